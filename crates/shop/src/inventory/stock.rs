//! Stock locations, levels, the movement ledger and low-stock events.
