//! The demo catalog `orderly up` starts with: a small shop of books, stationery and coffee, priced
//! in euros, with stock enough for load tests (and a few products nearly sold out).

use orderly::money::Money;

use crate::store::NewProduct;

/// `(sku, name, description, price in euro cents, stock on hand)`.
const DEMO: &[(&str, &str, &str, i64, i64)] = &[
    (
        "BOOK-1",
        "The Rust Programming Language",
        "The official book, in paperback.",
        1999,
        10_000_000,
    ),
    (
        "BOOK-2",
        "Designing Data-Intensive Applications",
        "Reliable, scalable, maintainable systems.",
        4299,
        10_000_000,
    ),
    (
        "BOOK-3",
        "Release It!",
        "Design and deploy production-ready software.",
        3499,
        10_000_000,
    ),
    (
        "BOOK-4",
        "Site Reliability Engineering",
        "How Google runs production systems.",
        3999,
        10_000_000,
    ),
    (
        "BOOK-5",
        "Zero To Production In Rust",
        "Backend development in Rust, from scratch.",
        3999,
        10_000_000,
    ),
    (
        "BOOK-6",
        "Database Internals",
        "How distributed data systems work, in depth.",
        4599,
        10_000_000,
    ),
    (
        "BOOK-7",
        "Building Microservices",
        "Designing fine-grained systems, second edition.",
        4799,
        10_000_000,
    ),
    (
        "BOOK-8",
        "The Linux Programming Interface",
        "The system programming handbook.",
        8999,
        10_000_000,
    ),
    (
        "NOTE-A5",
        "Dotted notebook, A5",
        "192 pages of 100 g/m² paper, lay-flat binding.",
        1450,
        10_000_000,
    ),
    (
        "NOTE-A4",
        "Squared notebook, A4",
        "160 pages, 5 mm squares, numbered.",
        1650,
        10_000_000,
    ),
    (
        "PEN-BLK",
        "Gel pen, black",
        "0.5 mm, refillable.",
        299,
        10_000_000,
    ),
    (
        "PEN-BLU",
        "Gel pen, blue",
        "0.5 mm, refillable.",
        299,
        10_000_000,
    ),
    (
        "PEN-FTN",
        "Fountain pen",
        "Steel nib, medium, with a converter.",
        3200,
        10_000_000,
    ),
    (
        "INK-BLU",
        "Bottled ink, blue-black",
        "50 ml, iron-gall free.",
        1100,
        10_000_000,
    ),
    (
        "PENCIL-HB",
        "Pencils, HB, box of 12",
        "Cedar, pre-sharpened.",
        799,
        10_000_000,
    ),
    (
        "ERASER",
        "Eraser",
        "Soft vinyl, smudge-free.",
        149,
        10_000_000,
    ),
    (
        "STICKY",
        "Sticky notes, 6 pads",
        "76 × 76 mm, assorted colours.",
        599,
        10_000_000,
    ),
    (
        "DESK-MAT",
        "Desk mat",
        "Felt, 90 × 40 cm, grey.",
        2999,
        10_000_000,
    ),
    (
        "MUG-1",
        "Enamel mug",
        "350 ml, white with a blue rim.",
        1200,
        10_000_000,
    ),
    (
        "COFFEE-1",
        "Coffee beans, house blend",
        "1 kg, medium roast.",
        2400,
        10_000_000,
    ),
    (
        "COFFEE-2",
        "Coffee beans, single origin",
        "250 g, light roast, Ethiopia.",
        1350,
        10_000_000,
    ),
    (
        "TEA-1",
        "Green tea, sencha",
        "100 g, loose leaf.",
        950,
        10_000_000,
    ),
    (
        "KETTLE",
        "Gooseneck kettle",
        "1 l, stovetop, stainless steel.",
        4900,
        10_000_000,
    ),
    (
        "GRINDER",
        "Hand coffee grinder",
        "Conical steel burrs, 30 settings.",
        7900,
        10_000_000,
    ),
    (
        "LAMP-1",
        "Desk lamp",
        "LED, dimmable, warm to cool white.",
        5900,
        10_000_000,
    ),
    (
        "CABLE-C",
        "USB-C cable",
        "2 m, braided, 100 W.",
        1299,
        10_000_000,
    ),
    (
        "HUB-C",
        "USB-C hub",
        "Seven ports, HDMI, card reader.",
        3999,
        10_000_000,
    ),
    (
        "KEYB-1",
        "Mechanical keyboard",
        "Tenkeyless, brown switches.",
        11900,
        10_000,
    ),
    (
        "MOUSE-1",
        "Wireless mouse",
        "Silent clicks, two years on one battery.",
        2900,
        10_000,
    ),
    (
        "HEADSET",
        "Headset",
        "Closed-back, detachable microphone.",
        8900,
        10_000,
    ),
    (
        "POSTER-1",
        "Limited print: Ferris",
        "Signed screen print, 50 × 70 cm.",
        12000,
        10,
    ),
    ("MUG-LTD", "Conference mug, 2026", "The last ones.", 1500, 3),
];

/// The demo catalog's products (a test checks that every entry above is one).
pub fn demo_catalog() -> Vec<NewProduct> {
    DEMO.iter()
        .filter_map(|&(sku, name, description, cents, on_hand)| {
            Some(NewProduct {
                sku: sku.to_owned(),
                name: name.to_owned(),
                description: description.to_owned(),
                price: Money::parse_positive("EUR", cents).ok()?,
                on_hand,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use orderly::validate::limits::{DESCRIPTION_CHARS, PRODUCT_NAME_CHARS, SKU_CHARS};
    use orderly::validate::{required_text, text};

    #[test]
    fn the_demo_catalog_passes_the_checks_of_create_product() {
        let products = super::demo_catalog();
        assert_eq!(
            products.len(),
            super::DEMO.len(),
            "every entry is a product"
        );
        assert!(products.len() >= 24, "a few dozen products");
        let mut skus = std::collections::HashSet::new();
        for product in &products {
            assert!(skus.insert(product.sku.clone()), "{} twice", product.sku);
            assert_eq!(
                required_text(&product.sku, SKU_CHARS),
                Ok(product.sku.as_str())
            );
            assert!(required_text(&product.name, PRODUCT_NAME_CHARS).is_ok());
            assert!(text(&product.description, DESCRIPTION_CHARS).is_ok());
            assert!(product.on_hand >= 0);
        }
    }
}
