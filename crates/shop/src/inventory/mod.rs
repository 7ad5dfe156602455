//! Inventory: stock levels and the movement ledger (`stock`), reservations and their expiry
//! (`reservations`), the batched reservation engine (`engine`) and flash sales (`flash`).

pub mod stock;
