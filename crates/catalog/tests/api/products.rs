//! Products: created by admins, read by anyone, listed a page at a time with a query, updated by
//! field mask, their stock adjusted once per key and never below zero; bad requests store nothing.

use orderly::catalog::v1::{
    AdjustStockRequest, BatchGetProductsRequest, CreateProductRequest, GetProductRequest,
    ListProductsRequest, UpdateProductRequest,
};
use prost_types::FieldMask;
use tonic::Code;

use crate::support::{TestServer, create, euros, get, new_product, reason, stock, violated_fields};

crate::on_both_backends!(
    a_product_is_created_read_and_updated_by_field_mask,
    a_taken_sku_is_refused,
    invalid_products_name_every_bad_field_and_store_nothing,
    lists_come_in_sku_order_a_page_at_a_time_filtered_by_a_query,
    a_batch_read_names_the_skus_it_did_not_find,
    stock_adjustments_apply_once_per_key_and_never_go_below_zero,
);

async fn a_product_is_created_read_and_updated_by_field_mask(mut server: TestServer) {
    let created = create(&mut server, "MUG-1", 1200, 5).await;
    assert_eq!(created.sku, "MUG-1");
    assert_eq!(created.price, Some(euros(1200)));
    assert_eq!(
        (
            created.stock_on_hand,
            created.stock_reserved,
            created.stock_sold
        ),
        (5, 0, 0)
    );
    assert_eq!(get(&mut server, "MUG-1").await, created);

    // Only the price changes: the name sent is ignored, as the mask says.
    let mut change = new_product("MUG-1", "ignored", 1500, 0);
    change.description.clear();
    let updated = server
        .client
        .update_product(UpdateProductRequest {
            product: Some(change),
            update_mask: Some(FieldMask {
                paths: vec!["price".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner()
        .product
        .expect("product");
    assert_eq!(updated.price, Some(euros(1500)));
    assert_eq!(updated.name, created.name);
    assert_eq!(updated.description, created.description);
    assert_eq!(updated.stock_on_hand, 5);

    // Stock is not a field UpdateProduct changes.
    let status = server
        .client
        .update_product(UpdateProductRequest {
            product: Some(new_product("MUG-1", "x", 1, 99)),
            update_mask: Some(FieldMask {
                paths: vec!["stock_on_hand".into()],
            }),
        })
        .await
        .expect_err("stock by update");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["update_mask.paths[0]"]);

    let status = server
        .client
        .get_product(GetProductRequest { sku: "NONE".into() })
        .await
        .expect_err("unknown SKU");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status).as_deref(), Some("PRODUCT_NOT_FOUND"));
    server.stop().await;
}

async fn a_taken_sku_is_refused(mut server: TestServer) {
    create(&mut server, "MUG-1", 1200, 5).await;
    let status = server
        .client
        .create_product(CreateProductRequest {
            product: Some(new_product("MUG-1", "Another mug", 900, 1)),
        })
        .await
        .expect_err("a taken SKU");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status).as_deref(), Some("SKU_TAKEN"));
    assert_eq!(get(&mut server, "MUG-1").await.price, Some(euros(1200)));
    server.stop().await;
}

async fn invalid_products_name_every_bad_field_and_store_nothing(mut server: TestServer) {
    let mut product = new_product("A\u{0}", " ", 0, -1);
    product.description = "line\u{7}bell".into();
    product.stock_sold = 3;
    let status = server
        .client
        .create_product(CreateProductRequest {
            product: Some(product),
        })
        .await
        .expect_err("an invalid product");
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "product.description",
            "product.name",
            "product.price.amount_minor",
            "product.sku",
            "product.stock_on_hand",
            "product.stock_sold",
        ]
    );
    let mut product = new_product("OK-1", "Fine", 100, 1);
    product.price = Some(orderly::common::v1::Money {
        currency_code: "ZZZ".into(),
        amount_minor: 100,
    });
    let status = server
        .client
        .create_product(CreateProductRequest {
            product: Some(product),
        })
        .await
        .expect_err("an unknown currency");
    assert_eq!(violated_fields(&status), ["product.price.currency_code"]);
    let listed = server
        .client
        .list_products(ListProductsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.products.is_empty(), "nothing stored");
    server.stop().await;
}

async fn lists_come_in_sku_order_a_page_at_a_time_filtered_by_a_query(mut server: TestServer) {
    for sku in ["MUG-2", "PEN-1", "MUG-1", "BOOK-1", "MUG_3"] {
        create(&mut server, sku, 100, 1).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = server
            .client
            .list_products(ListProductsRequest {
                page_size: 2,
                page_token: token.clone(),
                query: "Mug".into(),
            })
            .await
            .expect("list")
            .into_inner();
        assert!(page.products.len() <= 2);
        seen.extend(page.products.into_iter().map(|p| p.sku));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["MUG-1", "MUG-2", "MUG_3"], "matched ignoring case");

    // `_` is a character, not a wildcard.
    let underscored = server
        .client
        .list_products(ListProductsRequest {
            query: "g_".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let skus: Vec<_> = underscored
        .products
        .iter()
        .map(|p| p.sku.as_str())
        .collect();
    assert_eq!(skus, ["MUG_3"]);

    // A token continues only the query it was made for.
    let first = server
        .client
        .list_products(ListProductsRequest {
            page_size: 1,
            query: "mug".into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let status = server
        .client
        .list_products(ListProductsRequest {
            page_size: 1,
            page_token: first.next_page_token,
            query: "pen".into(),
        })
        .await
        .expect_err("a token of another query");
    assert_eq!(violated_fields(&status), ["page_token"]);
    server.stop().await;
}

async fn a_batch_read_names_the_skus_it_did_not_find(mut server: TestServer) {
    create(&mut server, "MUG-1", 100, 1).await;
    create(&mut server, "PEN-1", 200, 1).await;
    let batch = server
        .client
        .batch_get_products(BatchGetProductsRequest {
            skus: vec![
                "PEN-1".into(),
                "NONE".into(),
                "MUG-1".into(),
                "PEN-1".into(),
            ],
        })
        .await
        .expect("batch")
        .into_inner();
    let skus: Vec<_> = batch.products.iter().map(|p| p.sku.as_str()).collect();
    assert_eq!(skus, ["PEN-1", "MUG-1"], "in the order asked, once each");
    assert_eq!(batch.missing_skus, ["NONE"]);
    server.stop().await;
}

async fn stock_adjustments_apply_once_per_key_and_never_go_below_zero(mut server: TestServer) {
    create(&mut server, "MUG-1", 100, 5).await;
    let adjust = |delta: i64, key: &str| AdjustStockRequest {
        sku: "MUG-1".into(),
        delta,
        idempotency_key: key.into(),
        reason: "delivery received".into(),
    };
    for _ in 0..2 {
        let product = server
            .client
            .adjust_stock(adjust(10, "delivery-1"))
            .await
            .expect("adjust")
            .into_inner()
            .product
            .expect("product");
        assert_eq!(product.stock_on_hand, 15, "applied once");
    }
    let status = server
        .client
        .adjust_stock(adjust(11, "delivery-1"))
        .await
        .expect_err("the key with another delta");
    assert_eq!(reason(&status).as_deref(), Some("IDEMPOTENCY_KEY_REUSED"));

    let status = server
        .client
        .adjust_stock(adjust(-16, "count-1"))
        .await
        .expect_err("below zero");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status).as_deref(), Some("OUT_OF_STOCK"));
    assert_eq!(stock(&mut server, "MUG-1").await, (15, 0, 0));
    // The refused key was not spent.
    let product = server
        .client
        .adjust_stock(adjust(-15, "count-1"))
        .await
        .expect("down to zero")
        .into_inner()
        .product
        .expect("product");
    assert_eq!(product.stock_on_hand, 0);

    let status = server
        .client
        .adjust_stock(AdjustStockRequest {
            sku: "NONE".into(),
            ..adjust(1, "other")
        })
        .await
        .expect_err("an unknown product");
    assert_eq!(status.code(), Code::NotFound);
    let status = server
        .client
        .adjust_stock(adjust(0, ""))
        .await
        .expect_err("nothing to adjust");
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["delta", "idempotency_key"]);
    server.stop().await;
}
