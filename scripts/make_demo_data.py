#!/usr/bin/env python3
"""Build compact Emporium demo data from the UCI Online Retail data set.

Reads ../shared/data/online_retail/online_retail.csv (relative to the project root; override with
--input): one row per invoice line with InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
UnitPrice, CustomerID, Country. Writes into demo/ (or --out):
    catalog.json        two-level category tree and products
    customers.json.gz   one record per customer
    orders.csv.gz       one row per invoice line
Output is deterministic (sorted; json.dumps with sort_keys, compact separators and
ensure_ascii=False; gzip with mtime=0), so re-running gives identical bytes.

Filtering (the "clean" subset)
  * exact duplicate rows are dropped first (the source has 5,268);
  * InvoiceNo not starting with "C" (cancellations), Quantity > 0, UnitPrice >= 1p once rounded
    to pence (drops zero/negative prices and the 0.001 "PADS" lines);
  * StockCode is five digits plus optional letters (85123A), upper-cased; this drops POST, DOT, M,
    C2, BANK CHARGES, AMAZONFEE, CRUK, D, PADS, S, B, m and the DCGS*/gift_* codes;
  * a code is a product only if it has a usable description: stock notes ("?", all-lowercase
    text, damaged/lost/found/wrong/adjust..., lowercase "check") are ignored; upper-case CHECK is
    a fabric pattern ("BLUE CHECK BAG") and is kept. Carriage/packing/voucher lines are dropped;
  * customers and orders need a CustomerID; orders only keep skus that are in the catalog.

Products: title = most frequent description (ties: smallest) in title case; price_minor = most
frequent UnitPrice in pence (ties: lower) over rows with a CustomerID, which match orders.csv.gz
(anonymous rows carry higher retail prices; they are only used for codes never sold to a known
customer); units_sold = sum of Quantity over all clean rows, anonymous ones included;
stock = clamp(units_sold // 20, 5, 500); attributes = colour/material words in the description;
options = {"colour": ...} when a colour was found.

Categories: RULES is an ordered list of (leaf, keywords). A product goes to the first leaf with a
keyword (whole word or phrase, plural allowed) in its description; specific rules ("LUNCH BAG",
"CAKE CASES", "PLAYING CARDS") come before generic ones ("BAG", "CAKE", "CARD"). Anything else
goes to Gifts > Other Gifts. Empty categories are dropped.

Size limit: the three files must total at most 4,000,000 bytes. If they would not, orders.csv.gz
keeps only the most recent whole invoices that fit and the summary says how many lines were
dropped (customers still describe the full history). With the current data everything fits.

Credit: Chen, D. (2015). Online Retail [Dataset]. UCI Machine Learning Repository, id 352,
DOI 10.24432/C5BW33. License CC BY 4.0: keep this credit with the data.
Usage: python3 scripts/make_demo_data.py [--input CSV] [--out DIR]   (prints a summary)
"""
import argparse
import collections
import csv
import gzip
import io
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_INPUT = os.path.join(ROOT, "..", "shared", "data", "online_retail", "online_retail.csv")
SOURCE = "UCI Online Retail (Chen, 2015), DOI 10.24432/C5BW33"
LICENSE = "CC BY 4.0"
SIZE_LIMIT = 4_000_000
PRODUCT_CODE = re.compile(r"^\d{5}[A-Z]*$")
JUNK = re.compile(r"\?|\b(damaged?|damages|lost|found|wrong(ly)?|adjust(ment)?|thrown|missing|"
                  r"samples?|next day carriage|packing charge|voucher|high resolution image)\b", re.I)
ABBREVIATIONS = {"ASS": "Assorted", "ASST": "Assorted", "ASSTD": "Assorted", "NECKL": "Necklace",
                 "NECKLAC": "Necklace"}
SMALL_WORDS = {"of", "and", "in", "with", "for", "a", "an", "the", "on", "to", "or", "w"}
COLOURS = {w: w.title() for w in "RED PINK BLUE WHITE BLACK GREEN IVORY CREAM SILVER GOLD PURPLE "
           "ORANGE YELLOW BROWN GREY TURQUOISE LILAC AQUA TEAL BEIGE NAVY LIME MAUVE".split()}
COLOURS.update({"GRAY": "Grey", "FUSCHIA": "Fuchsia", "FUCHSIA": "Fuchsia"})
MATERIALS = {w: w.title() for w in "GLASS WOOD CERAMIC ENAMEL ZINC METAL PAPER FELT PORCELAIN WICKER "
             "COTTON LINEN ACRYLIC SLATE COPPER BAMBOO".split()}
MATERIALS["WOODEN"] = "Wood"

# Display tree: (top-level name, [leaf names]). Slugs are derived from names.
TREE = [
    ("Christmas & Seasonal", ["Christmas Decorations", "Advent & Easter"]),
    ("Home Decor", ["Candles & Holders", "Signs & Plaques", "Frames & Mirrors", "Clocks",
                    "Cushions & Textiles", "Hooks & Storage"]),
    ("Kitchen & Dining", ["Mugs & Cups", "Plates & Bowls", "Baking & Kitchen Tools",
                          "Tea & Storage Tins", "Lunch Boxes & Bottles"]),
    ("Bags", ["Shopping Bags", "Lunch Bags", "Purses & Handbags"]),
    ("Stationery & Cards", ["Cards & Wrap", "Notebooks & Pens", "Stickers & Magnets"]),
    ("Toys & Games", ["Toys", "Games & Puzzles", "Kids Crafts"]),
    ("Party", ["Party Decorations", "Cake Cases & Napkins"]),
    ("Garden & Outdoor", ["Garden", "Picnic & Travel"]),
    ("Jewellery & Accessories", ["Jewellery", "Hair Accessories", "Fashion Accessories"]),
    ("Lighting", ["Fairy & String Lights", "Lamps & Lanterns"]),
    ("Gifts", ["Bath & Beauty", "Ornaments & Keepsakes", "Other Gifts"]),
]
FALLBACK = "Other Gifts"
# Match order matters: first rule whose keyword is found wins.
RULES = [
    ("Clocks", "CLOCK|ALARM"),
    ("Lunch Bags", "LUNCH BAG"),
    ("Cushions & Textiles", "HOT WATER BOTTLE|HOTTIE"),
    ("Bath & Beauty", "BATHROOM BOTTLE|TOILETTE BOTTLE|SOAP|FLANNEL|WASHBAG"),
    ("Lunch Boxes & Bottles", "LUNCH BOX|WATER BOTTLE|FLASK|SNACK BOX|PICNIC BOX"),
    ("Plates & Bowls", "EGG CUP|EGG SPOON|EGG HOLDER|EGG COSY|EGG WARMER|MIXING BOWLS|WINE GLASS|"
                       "CHAMPAGNE GLASS|GOBLET|CHALICE|APERITIF GLASS|MILKSHAKE GLASS|PLATTER|FRUITBOWL|"
                       "TEA BAG PLATE"),
    ("Baking & Kitchen Tools", "BAKING MOULD|FRYING PAN|EGG PAN|LOLLY MAKERS|LOLLY MOULDS|FOOD COVER|"
                               "WASHING UP GLOVES|WASHING UP BRUSH|SCRUBBING BRUSH|APPLE CORER|"
                               "PASTRY BRUSH|ORANGE SQUEEZER|BOTTLE OPENER"),
    ("Garden", "GARDEN GLOVES|GARDENERS|GARDEN TOOLS"),
    ("Toys", "MARBLES|SOFT TOY|GEMS|FELT FARM ANIMAL|BABY GIFT SET|BIB|GLOW IN DARK"),
    ("Party Decorations", "PARTY BAG"),
    ("Hooks & Storage", "SUCTION CUP|SUCTION HOOK|MONEY BANK|MONEY BOX|PIGGY BANK"),
    ("Cake Cases & Napkins", "CAKE CASE|NAPKIN|PAPER CUPS|STRAWS|DOILIES|PETIT FOUR CASES|BAKING CASES|"
                             "PAPER PLATE"),
    ("Games & Puzzles", "PLAYING CARDS|JIGSAW|GAME|DOMINOES|PUZZLE|BINGO|SNAKES|SKITTLES|LUDO|NAUGHTS|"
                        "SPORTING FUN|PICK UP STICKS"),
    ("Advent & Easter", "ADVENT|EASTER|HALLOWEEN|EGG|CHICK|BUNNY|BUNNIES"),
    ("Christmas Decorations", "CHRISTMAS|XMAS|SANTA|REINDEER|SNOWFLAKE|SNOWMAN|BAUBLE|NATIVITY|STOCKING|"
                              "ANGEL|NOEL|TREE TOP|SLEIGH|JINGLE|MISTLETOE|TINSEL|CRACKER|FEATHER TREE"),
    ("Cards & Wrap", "RIBBON|RIBBON REEL|WRAP|BLANK CARD|GREETING CARD"),
    ("Hair Accessories", "HAIR|HAIRCLIP|HAIRSLIDE|TIARA|HAIRBAND|SLIDES"),
    ("Fashion Accessories", "KEY RING|KEYRING|UMBRELLA|SCARF|GLOVES|HAND WARMER|COMPACT MIRROR|SUNGLASSES|"
                            "HAT|BADGE|BROOCH|PASSPORT COVER|PONCHO|RAIN MAC|EAR MUFF|SLIPPER|KEY-CHAINS|"
                            "KEY FOB|SOMBRERO|FAN|BICYCLE CLIPS"),
    ("Jewellery", "NECKLACE|NECKL|NECKLAC|BRACELET|RING|PENDANT|BEAD|BEADED|BANGLE|CHARM|DIAMANTE|EARRING|"
                  "BRACLET|GARLD|JEWEL|JEWELLED|CHOKER|LARIAT"),
    ("Candles & Holders", "CANDLE|CANDLEHOLDER|CANDLESTICK|T-LIGHT|TEALIGHT|TEA LIGHT|INCENSE|OIL BURNER|"
                          "VOTIVE|CANDLEPOT|MATCHES"),
    ("Fairy & String Lights", "LIGHTS|FAIRY LIGHT|LED|LIGHT CHAIN"),
    ("Lamps & Lanterns", "LAMP|LAMPSHADE|LANTERN|NIGHT LIGHT|CHANDELIER|TABLE LIGHT|BEDSIDE LIGHT|"
                         "LIGHT GARLAND|LIGHT DECORATION|UBO-LIGHT|LIGHTBULB|BULB"),
    ("Frames & Mirrors", "FRAME|MIRROR|PHOTO|ALBUM"),
    ("Signs & Plaques", "SIGN|PLAQUE|NUMBER TILE|WALL ART|BLACKBOARD|CHALKBOARD|MEMO BOARD|LETTERS|"
                        "BLOCK WORD|CANVAS ART|CANVAS SCREEN|SHELLS PRINT|KITCHEN PRINT"),
    ("Purses & Handbags", "PURSE|WALLET|HANDBAG|CARD HOLDER|COSMETIC BAG|BACKPACK"),
    ("Shopping Bags", "SHOPPER|TOTE|BAG|JUMBO"),
    ("Party Decorations", "PARTY|BUNTING|GARLAND|BALLOON|BIRTHDAY|BANNER|PAPER CHAIN|HONEYCOMB|CONFETTI|"
                          "FLAG|COCKTAIL|PENNANT|ROSETTE"),
    ("Cards & Wrap", "CARD|WRAP|GIFT TAG|TAGS|TISSUE|RIBBON|ENVELOPE|GREETING|WRAPPING|GIFT BOX"),
    ("Notebooks & Pens", "NOTEBOOK|NOTE BOOK|PEN|PENCIL|SKETCHBOOK|NOTEPAD|ERASER|RUBBER|RULER|CALENDAR|"
                         "ADDRESS BOOK|MEMO|JOURNAL|STATIONERY|CRAYONS|ORGANISER|SCISSOR|HOLE PUNCH|"
                         "EXERCISE BOOKS|POCKET BOOK|WRITING SET|POSTCARD|MEMOBOARD|CALCULATOR|SHARPENER|"
                         "PAPERWEIGHT|P'WEIGHT"),
    ("Stickers & Magnets", "STICKER|TAPE|MAGNET|STAMP|STENCIL|TRANSFER"),
    ("Kids Crafts", "CRAFT|KIT|FELTCRAFT|COLOURING|PAINT|SEWING|KNITTING|ORIGAMI|SCRAP BOOK|MODELLING|"
                    "PATCHES|CHALK|CHALK STICKS|COOKING SET"),
    ("Toys", "TOY|DOLL|TEDDY|PUPPET|MARBLES|SPINNING TOP|BALL|SKIPPING|SOLDIER|ROBOT|GLIDER|BUBBLES|RATTLE|"
             "HARMONICA|ROCKING HORSE|HELICOPTER|FLYING DISC|PLAYHOUSE|WHEELBARROW|INFLATABLE|WINDMILL|"
             "MAGIC DRAWING SLATE|CREEPY CRAWLIES|MONSTER"),
    ("Mugs & Cups", "MUG|CUP|BEAKER|SAUCER|TEACUP|TUMBLER"),
    ("Baking & Kitchen Tools", "BAKING|CUTTER|APRON|OVEN|MOULD|JELLY|MEASURING|SPOON|WHISK|SPATULA|"
                               "ROLLING PIN|CAKE STAND|CAKESTAND|CAKE|RECIPE|SCALES|TEA TOWEL|CHOPPING|"
                               "KITCHEN|PAN|COOKIE|OVEN GLOVE|FRIDGE|COLANDER|TOAST|TOASTRACK"),
    ("Tea & Storage Tins", "TIN|JAR|CONTAINER|TEA|COFFEE|SUGAR|BREAD BIN|BISCUIT|STORAGE|JAMPOT|JAM POT|"
                           "CADDY|PANTRY|SWEETIE"),
    ("Plates & Bowls", "PLATE|BOWL|DISH|TRAY|CUTLERY|COASTER|JUG|PLACEMAT|SALAD|GLASSES|TABLECLOTH|BUTTER|"
                       "DINNER|BREAKFAST|EGG CUP|TEAPOT|CHOPSTICKS"),
    ("Garden", "GARDEN|WATERING CAN|PLANT|PLANTER|PLANT POT|FLOWER POT|TROWEL|HERB|BIRD FEEDER|BIRDHOUSE|"
               "BIRD HOUSE|BIRD TABLE|GNOME|WINDCHIME|GARDENERS|HAMMOCK|GROW|THERMOMETER"),
    ("Picnic & Travel", "PICNIC|BEACH|PARASOL|TRAVEL|LUGGAGE|PASSPORT|HAMPER|CAMPING|BUCKET|CARAVAN"),
    ("Cushions & Textiles", "CUSHION|THROW|CURTAIN|DOORMAT|FILLER PAD|QUILT|TOWEL|MAT|FABRIC|CROCHET|"
                            "EMBROIDERED|POUFFE|STOOL|CHAIR"),
    ("Hooks & Storage", "HOOK|DRAWER|CABINET|BASKET|KNOB|HANGER|SHELF|TRINKET|BOX|DOORSTOP|RACK|CHEST|"
                        "SIDEBOARD|PEG|HOLDER|STAND|TIDY|BIN|CRATE"),
    ("Bath & Beauty", "SOAP|BATH|BATHROOM|SPONGE|LIP GLOSS|BALM|SHOWER|SCENTED|LAVENDER|FRAGRANCE|PERFUME"),
    ("Ornaments & Keepsakes", "ORNAMENT|VASE|DECORATION|HANGING|FIGURE|WREATH|BELL|MOBILE|BIRD|PAPERWEIGHT|"
                              "CLOCHE|BUTTERFLY|HEART|STAR|ROSE|FLOWER|GLOBE"),
]


def slugify(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("&", "and")).strip("-")


def keyword_regex(words):
    """Whole-word match of any keyword, plurals included (CUP matches CUPS, BOX matches BOXES)."""
    alternatives = "|".join(re.escape(w) for w in words.split("|"))
    return re.compile(r"(?<![A-Z0-9])(?:%s)(?:E?S)?(?![A-Z0-9])" % alternatives)


COMPILED_RULES = [(slugify(leaf), keyword_regex(words)) for leaf, words in RULES]


def title_case(text):
    """'WHITE HANGING HEART T-LIGHT HOLDER' -> 'White Hanging Heart T-Light Holder'."""
    out = []
    for i, token in enumerate(text.lstrip("*").split()):
        if token.upper() in ABBREVIATIONS:
            out.append(ABBREVIATIONS[token.upper()])
        elif any(ch.isdigit() for ch in token):
            out.append(token)
        elif i > 0 and token.lower() in SMALL_WORDS:
            out.append(token.lower())
        else:
            out.append(re.sub(r"[A-Za-z][A-Za-z']*", lambda m: m.group(0).capitalize(), token))
    return " ".join(out)


def is_junk(desc):
    """Stock notes rather than product names: no capitals, '?', damaged/lost/..., lowercase 'check'."""
    return not any(c.isupper() for c in desc) or bool(JUNK.search(desc) or re.search(r"\bcheck\b", desc))


def first_word_in(text, table):
    """First word of text that is a key of table (colour/material), mapped to its value, else None."""
    words = re.findall(r"[A-Z]+", text.upper().replace("ICE CREAM", ""))
    return next((table[w] for w in words if w in table), None)


def read_rows(path):
    """Yield de-duplicated clean rows as dicts with parsed fields."""
    seen = set()
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            key = tuple(row.values())
            if key in seen:
                continue
            seen.add(key)
            sku = row["StockCode"].strip().upper()
            qty, price = int(row["Quantity"]), round(float(row["UnitPrice"]) * 100)
            if row["InvoiceNo"].startswith("C") or qty <= 0 or price <= 0 or not PRODUCT_CODE.match(sku):
                continue
            cid = row["CustomerID"].strip()
            yield {"invoice": row["InvoiceNo"], "sku": sku, "desc": " ".join(row["Description"].split()),
                   "qty": qty, "price": price, "country": row["Country"],
                   "customer": cid[:-2] if cid.endswith(".0") else cid,
                   "at": row["InvoiceDate"].replace(" ", "T") + "Z"}


def categorize(desc):
    """Slug of the first leaf whose rule matches, else the fallback leaf."""
    return next((slug for slug, rx in COMPILED_RULES if rx.search(desc.upper())), slugify(FALLBACK))


def build_catalog(rows):
    """Return ({source, license, categories, products}, skipped stock codes)."""
    descs, prices, anon_prices, units = (collections.defaultdict(collections.Counter) for _ in range(4))
    for r in rows:
        if r["desc"]:
            descs[r["sku"]][r["desc"]] += 1
        (prices if r["customer"] else anon_prices)[r["sku"]][r["price"]] += 1
        units[r["sku"]]["n"] += r["qty"]
    names = {slugify(n): n for top, leaves in TREE for n in [top] + leaves}
    products, skipped = [], []
    for sku in sorted(units):
        good = [(-n, d) for d, n in descs[sku].items() if not is_junk(d)]
        if not good:
            skipped.append(sku)
            continue
        desc = min(good)[1]
        title, cat = title_case(desc), categorize(desc)
        price_counts = prices.get(sku) or anon_prices[sku]  # prefer prices paid by known customers
        price = min(price_counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        colour, material = first_word_in(desc, COLOURS), first_word_in(desc, MATERIALS)
        attrs = {k: v for k, v in (("colour", colour), ("material", material)) if v}
        sold = units[sku]["n"]
        products.append({
            "sku": sku, "title": title, "category": cat, "price_minor": price, "currency": "GBP",
            "description": f"{title}. From our UK gift range: {names[cat]}.",
            "attributes": attrs, "options": {"colour": colour} if colour else {},
            "units_sold": sold, "stock": max(5, min(500, sold // 20)),
        })
    used = collections.Counter(p["category"] for p in products)
    categories = []
    for top, leaves in TREE:
        kids = [{"slug": slugify(n), "name": n, "parent": slugify(top)} for n in leaves if used[slugify(n)]]
        if kids:
            categories += [{"slug": slugify(top), "name": top, "parent": None}] + kids
    catalog = {"source": SOURCE, "license": LICENSE, "categories": categories, "products": products}
    return catalog, skipped


def build_orders(rows, skus):
    """Distinct (ordered_at, invoice, sku, quantity, price, customer) tuples, sorted."""
    lines = {(r["at"], r["invoice"], r["sku"], r["qty"], r["price"], r["customer"])
             for r in rows if r["customer"] and r["sku"] in skus}
    return sorted(lines)


def build_customers(rows, order_lines):
    """One record per customer with orders; country = their most frequent one (ties: smallest)."""
    countries = collections.defaultdict(collections.Counter)
    for r in rows:
        if r["customer"]:
            countries[r["customer"]][r["country"]] += 1
    first, invoices = {}, collections.defaultdict(set)
    for at, inv, _sku, _q, _p, cid in order_lines:
        first[cid] = min(first.get(cid, at), at)
        invoices[cid].add(inv)
    return [{"customer_id": cid, "first_order_at": first[cid], "orders": len(invoices[cid]),
             "country": min(countries[cid].items(), key=lambda kv: (-kv[1], kv[0]))[0]}
            for cid in sorted(first)]


def gzip_bytes(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def orders_csv(lines):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["invoice", "customer_id", "ordered_at", "sku", "quantity", "unit_price_minor"])
    for at, inv, sku, qty, price, cid in lines:
        w.writerow([inv, cid, at, sku, qty, price])
    return gzip_bytes(buf.getvalue().encode("utf-8"))


def fit_orders(lines, budget):
    """Gzip all order lines, or the most recent whole invoices that fit in budget bytes."""
    data = orders_csv(lines)
    if len(data) <= budget:
        return data, len(lines)
    starts = [i for i in range(len(lines)) if i == 0 or lines[i][:2] != lines[i - 1][:2]]
    lo, hi = 0, len(starts) - 1  # find the smallest start index that fits
    while lo < hi:
        mid = (lo + hi) // 2
        if len(orders_csv(lines[starts[mid]:])) <= budget:
            hi = mid
        else:
            lo = mid + 1
    kept = lines[starts[lo]:]
    return orders_csv(kept), len(kept)


def dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def report(catalog, customers, total_lines, kept_lines, skipped, out):
    names = {c["slug"]: c["name"] for c in catalog["categories"]}
    counts = collections.Counter(p["category"] for p in catalog["products"])
    n = len(catalog["products"])
    print("files:")
    for f in ("catalog.json", "customers.json.gz", "orders.csv.gz"):
        print(f"  {f:<18} {os.path.getsize(os.path.join(out, f)):>10,} bytes")
    tops = sum(c["parent"] is None for c in catalog["categories"])
    print(f"products {n:,} (skipped {len(skipped)} codes with no usable description: {', '.join(skipped)})")
    print(f"categories {len(catalog['categories'])} ({tops} top-level); customers {len(customers):,}")
    print(f"order lines {kept_lines:,}" + ("" if kept_lines == total_lines else
          f" (TRIMMED to the most recent invoices; {total_lines - kept_lines:,} older lines dropped)"))
    print("products per category (top level, then its leaves indented):")
    for c in catalog["categories"]:
        kids = [x["slug"] for x in catalog["categories"] if x["parent"] == c["slug"]] or [c["slug"]]
        k = sum(counts[x] for x in kids)
        label = "    " + c["name"] if c["parent"] else "  " + c["name"]
        print(f"{label:<30} {k:>5} ({100 * k / n:4.1f}%)")
    print("sample products (every n/10-th sku):")
    for p in catalog["products"][:: max(1, n // 10)][:10]:
        cat = names[p["category"]]
        print(f"  {p['sku']:<7}{p['price_minor']:>6}p  {cat:<22} {p['title']}  {p['attributes']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default=DEFAULT_INPUT, help="path to online_retail.csv")
    ap.add_argument("--out", default=os.path.join(ROOT, "demo"), help="output directory")
    args = ap.parse_args()
    rows = list(read_rows(args.input))
    catalog, skipped = build_catalog(rows)
    lines = build_orders(rows, {p["sku"] for p in catalog["products"]})
    customers = build_customers(rows, lines)
    catalog_bytes = dumps(catalog).encode("utf-8")
    customer_bytes = gzip_bytes(dumps(customers).encode("utf-8"))
    orders_bytes, kept = fit_orders(lines, SIZE_LIMIT - len(catalog_bytes) - len(customer_bytes))
    os.makedirs(args.out, exist_ok=True)
    for name, data in (("catalog.json", catalog_bytes), ("customers.json.gz", customer_bytes),
                       ("orders.csv.gz", orders_bytes)):
        with open(os.path.join(args.out, name), "wb") as fh:
            fh.write(data)
    report(catalog, customers, len(lines), kept, skipped, args.out)


if __name__ == "__main__":
    main()
