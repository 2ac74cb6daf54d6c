//! The conformance checker's own tests: it must accept what the official documents allow and
//! reject, with a message naming the place and the schema, what they do not.

mod support;

use serde_json::{Value, json};
use support::openapi::{Spec, assert_conforms};

/// The errors of a check that must fail, joined for `contains` assertions.
fn failure(result: Result<(), Vec<String>>) -> String {
    match result {
        Ok(()) => panic!("expected the check to fail, but it passed"),
        Err(errors) => errors.join("\n"),
    }
}

fn passes(result: Result<(), Vec<String>>) {
    if let Err(errors) = result {
        panic!("expected the check to pass:\n{}", errors.join("\n"));
    }
}

fn magento_product() -> Value {
    json!({
        "id": 7,
        "sku": "ABC-1",
        "name": "Blue mug",
        "attribute_set_id": 4,
        "price": 12.5,
        "status": 1,
        "visibility": 4,
        "type_id": "simple",
        "created_at": "2026-11-26 10:00:00",
        "updated_at": "2026-11-26 10:05:00",
        "weight": 0.4,
        "extension_attributes": {
            "website_ids": [1],
            "stock_item": magento_stock_item()
        },
        "product_links": [],
        "options": [],
        "media_gallery_entries": [],
        "tier_prices": [],
        "custom_attributes": [
            { "attribute_code": "description", "value": "<p>A mug.</p>" }
        ]
    })
}

/// As Magento 2.4 returns it, `low_stock_date: null` included.
fn magento_stock_item() -> Value {
    json!({
        "item_id": 7, "product_id": 7, "stock_id": 1, "qty": 10, "is_in_stock": true,
        "is_qty_decimal": false, "show_default_notification_message": false,
        "use_config_min_qty": true, "min_qty": 0, "use_config_min_sale_qty": 1, "min_sale_qty": 1,
        "use_config_max_sale_qty": true, "max_sale_qty": 10000, "use_config_backorders": true,
        "backorders": 0, "use_config_notify_stock_qty": true, "notify_stock_qty": 1,
        "use_config_qty_increments": true, "qty_increments": 0, "use_config_enable_qty_inc": true,
        "enable_qty_increments": false, "use_config_manage_stock": true, "manage_stock": true,
        "low_stock_date": null, "is_decimal_divided": false, "stock_status_changed_auto": 0
    })
}

fn acumatica_stock_item() -> Value {
    json!({
        "id": "5f0e3a1c-2b7d-4c1e-9a55-1d2e3f405162",
        "rowNumber": 1,
        "note": { "value": "" },
        "InventoryID": { "value": "ABC-1" },
        "Description": { "value": "Blue mug" },
        "ItemStatus": { "value": "Active" },
        "DefaultPrice": { "value": 12.5 },
        "LastModifiedDateTime": { "value": "2026-11-26T10:05:00+00:00" },
        "custom": {
            "Item": { "UsrMagentoSync": { "type": "CustomBooleanField", "value": true } }
        },
        "files": []
    })
}

// ---------- Magento: schemas ----------

#[test]
fn magento_correct_product_passes() {
    let spec = Spec::magento();
    passes(spec.check_response("GET", "/V1/products/ABC-1", 200, &magento_product()));
    passes(spec.check_definition("catalog-data-product-interface", &magento_product()));
}

#[test]
fn magento_invented_property_fails_naming_pointer_and_schema() {
    let mut product = magento_product();
    product["extension_attributes"]["stock_item"]["warehouse"] = json!("main");
    let message =
        failure(Spec::magento().check_response("GET", "/V1/products/ABC-1", 200, &product));
    assert!(
        message.contains("GET /V1/products/{sku} -> 200"),
        "{message}"
    );
    assert!(
        message.contains(r#""/extension_attributes/stock_item/warehouse""#),
        "{message}"
    );
    assert!(message.contains("not declared"), "{message}");
    assert!(
        message.contains("catalog-inventory-data-stock-item-interface"),
        "{message}"
    );
}

#[test]
fn magento_empty_extension_interface_accepts_no_properties() {
    // The product type's extension interface declares no properties: nothing may be invented there.
    let types = json!([{ "name": "simple", "label": "Simple Product", "extension_attributes": { "x": 1 } }]);
    let message = failure(Spec::magento().check_response("GET", "/V1/products/types", 200, &types));
    assert!(
        message.contains(r#""/0/extension_attributes/x""#),
        "{message}"
    );
    assert!(
        message.contains("catalog-data-product-type-extension-interface"),
        "{message}"
    );
}

#[test]
fn magento_wrong_type_fails() {
    let mut product = magento_product();
    product["price"] = json!("12.50");
    let message =
        failure(Spec::magento().check_response("GET", "/V1/products/ABC-1", 200, &product));
    assert!(
        message.contains(r#""/price": expected number, found string "12.50""#),
        "{message}"
    );
    assert!(
        message.contains("(schema catalog-data-product-interface)"),
        "{message}"
    );

    let mut product = magento_product();
    product["id"] = json!(7.5);
    let message =
        failure(Spec::magento().check_definition("catalog-data-product-interface", &product));
    assert!(
        message.contains(r#""/id": expected integer, found number 7.5"#),
        "{message}"
    );
}

#[test]
fn magento_missing_required_field_fails() {
    let mut product = magento_product();
    product.as_object_mut().unwrap().remove("sku");
    let message =
        failure(Spec::magento().check_definition("catalog-data-product-interface", &product));
    assert!(
        message.contains(r#""": missing required property "sku""#),
        "{message}"
    );
}

#[test]
fn magento_null_only_where_magento_writes_it() {
    // Magento writes null only for a required property; an optional one is left out instead.
    let mut product = magento_product();
    product["name"] = Value::Null;
    let message =
        failure(Spec::magento().check_definition("catalog-data-product-interface", &product));
    assert!(
        message.contains(r#""/name": expected string, found null"#),
        "{message}"
    );
    let mut stock_item = magento_stock_item();
    stock_item["qty"] = Value::Null;
    passes(
        Spec::magento()
            .check_definition("catalog-inventory-data-stock-item-interface", &stock_item),
    );
    stock_item["item_id"] = Value::Null;
    let message = failure(
        Spec::magento()
            .check_definition("catalog-inventory-data-stock-item-interface", &stock_item),
    );
    assert!(
        message.contains(r#""/item_id": expected integer, found null"#),
        "{message}"
    );
}

#[test]
fn magento_search_result_items_are_checked_each() {
    let mut bad = magento_product();
    bad["visibility"] = json!(true);
    let results = json!({
        "items": [magento_product(), bad],
        "search_criteria": { "filter_groups": [], "page_size": 100, "current_page": 1 },
        "total_count": 2
    });
    let message = failure(Spec::magento().check_response("GET", "/V1/products", 200, &results));
    assert!(
        message.contains(r#""/items/1/visibility": expected integer"#),
        "{message}"
    );
    assert!(!message.contains("/items/0"), "{message}");
}

#[test]
fn magento_error_replies_use_error_response_through_default() {
    let spec = Spec::magento();
    let not_found = json!({
        "message": "The product that was requested doesn't exist. Verify the product and try again.",
    });
    passes(spec.check_response("GET", "/V1/products/NOPE", 404, &not_found));
    let with_parameters = json!({
        "message": "The \"%1\" attribute value is empty. Set the attribute and try again.",
        "parameters": [{ "fieldName": "sku" }]
    });
    passes(spec.check_response("PUT", "/V1/products/ABC-1", 400, &with_parameters));
    let message = failure(spec.check_response(
        "GET",
        "/V1/products/NOPE",
        404,
        &json!({ "error": "not found" }),
    ));
    assert!(
        message.contains("missing required property \"message\""),
        "{message}"
    );
    assert!(
        message.contains(r#""/error": property "error" is not declared (schema error-response)"#),
        "{message}"
    );
}

#[test]
fn magento_error_parameters_positional_or_named() {
    // DESIGN.md section 7: `parameters` is an array for "%1" and an object for "%fieldName",
    // as Magento sends them (the document declares only an array of objects).
    let spec = Spec::magento();
    assert_conforms(spec.check_response(
        "PUT",
        "/V1/products/ABC-1",
        400,
        &json!({ "message": "The \"%1\" attribute value is empty.", "parameters": ["name"] }),
    ));
    assert_conforms(spec.check_response(
        "GET",
        "/V1/orders/9",
        404,
        &json!({ "message": "No such entity with %fieldName = %fieldValue", "parameters": { "fieldName": "id", "fieldValue": 9 } }),
    ));
    assert_conforms(spec.check_response(
        "POST",
        "/V1/inventory/source-items",
        400,
        &json!({ "message": "Validation Failed", "errors": [{ "message": "\"%field\" can not be empty.", "parameters": { "field": "sku" } }] }),
    ));
    let message = failure(spec.check_response(
        "GET",
        "/V1/orders/9",
        404,
        &json!({ "message": "x", "parameters": "id" }),
    ));
    assert!(message.contains(r#""/parameters": expected array or object, found string "id" (schema error-parameters)"#), "{message}");
}

#[test]
fn magento_void_operation_answers_200_with_an_empty_array() {
    // The document declares no 200 for a void method; Magento answers 200 with `[]`.
    let spec = Spec::magento();
    assert_conforms(spec.check_response("POST", "/V1/inventory/source-items", 200, &json!([])));
    let message = failure(spec.check_response(
        "POST",
        "/V1/inventory/source-items",
        200,
        &json!({ "ok": true }),
    ));
    assert!(
        message.contains("a void operation answers 200 with [], found object"),
        "{message}"
    );
    // Its errors are still checked against error-response.
    let message =
        failure(spec.check_response("POST", "/V1/inventory/source-items", 400, &json!([])));
    assert!(
        message.contains("expected object, found array (schema error-response)"),
        "{message}"
    );
}

#[test]
fn magento_nested_required_applies_to_replies_not_to_requests() {
    let spec = Spec::magento();
    // A partial stock item is a normal request: Magento only requires the method's parameters.
    let partial = json!({ "stockItem": { "qty": 5, "is_in_stock": true } });
    assert_conforms(spec.check_request("PUT", "/V1/products/ABC-1/stockItems/1", Some(&partial)));
    let message = failure(spec.check_request(
        "PUT",
        "/V1/products/ABC-1/stockItems/1",
        Some(&json!({ "qty": 5 })),
    ));
    assert!(
        message.contains(r#""": missing required property "stockItem""#),
        "{message}"
    );
    // Types and undeclared properties still count below the top level.
    let wrong = json!({ "stockItem": { "qty": "5", "warehouse": "main" } });
    let message =
        failure(spec.check_request("PUT", "/V1/products/ABC-1/stockItems/1", Some(&wrong)));
    assert!(
        message.contains(r#""/stockItem/qty": expected number"#),
        "{message}"
    );
    assert!(
        message.contains(r#""/stockItem/warehouse": property "warehouse" is not declared"#),
        "{message}"
    );
    // A reply must carry every required property.
    let mut product = magento_product();
    product["extension_attributes"]["stock_item"]
        .as_object_mut()
        .unwrap()
        .remove("qty");
    let message = failure(spec.check_response("GET", "/V1/products/ABC-1", 200, &product));
    assert!(
        message.contains(r#""/extension_attributes/stock_item": missing required property "qty""#),
        "{message}"
    );
}

// ---------- Magento: paths and requests ----------

#[test]
fn magento_literal_segment_wins_over_parameter() {
    let spec = Spec::magento();
    // `/V1/products/types` is its own operation (a list of types), not product `{sku}` = "types".
    let types = json!([{ "name": "simple", "label": "Simple Product" }]);
    passes(spec.check_response("GET", "/V1/products/types", 200, &types));
    // `base-prices` takes POST; `{sku}` does not, so a mix-up would be an error.
    let prices = json!({ "prices": [{ "price": 9.5, "store_id": 0, "sku": "ABC-1" }] });
    passes(spec.check_request("POST", "/V1/products/base-prices", Some(&prices)));
    passes(spec.check_response("POST", "/V1/products/base-prices", 200, &json!([])));
    // Percent-encoded parameter values are decoded before matching.
    passes(spec.check_request("GET", "/V1/products/ABC%2F1%20X", None));
}

#[test]
fn magento_search_criteria_query_passes() {
    let spec = Spec::magento();
    let query = "/V1/products?searchCriteria[filter_groups][0][filters][0][field]=updated_at\
        &searchCriteria[filter_groups][0][filters][0][value]=2026-11-26%2010:00:00\
        &searchCriteria[filter_groups][0][filters][0][condition_type]=gteq\
        &searchCriteria[filter_groups][1][filters][0][field]=type_id\
        &searchCriteria[filter_groups][1][filters][0][value]=simple\
        &searchCriteria[sortOrders][0][field]=updated_at\
        &searchCriteria[sortOrders][0][direction]=ASC\
        &searchCriteria[sortOrders][1][field]=entity_id\
        &searchCriteria[pageSize]=300&searchCriteria[currentPage]=2";
    passes(spec.check_request("GET", query, None));
    // The spec's own spelling (camelCase, URL-encoded brackets) too.
    passes(spec.check_request(
        "GET",
        "/V1/products?searchCriteria%5BfilterGroups%5D%5B0%5D%5Bfilters%5D%5B0%5D%5BconditionType%5D=eq",
        None,
    ));
}

#[test]
fn magento_undeclared_or_mistyped_query_parameter_fails() {
    let spec = Spec::magento();
    let message = failure(spec.check_request(
        "GET",
        "/V1/products?searchCriteria[pageSize]=10&limit=5",
        None,
    ));
    assert!(
        message.contains(r#"query parameter "limit" is not declared"#),
        "{message}"
    );
    let message =
        failure(spec.check_request("GET", "/V1/products?searchCriteria[page_size]=ten", None));
    assert!(
        message.contains(r#"searchCriteria[page_size]="ten": expected integer"#),
        "{message}"
    );
    let message = failure(spec.check_request(
        "GET",
        "/V1/products?searchCriteria[filter_groups][0][bogus]=1",
        None,
    ));
    assert!(message.contains("not declared"), "{message}");
}

#[test]
fn magento_array_query_parameter_and_required_ones() {
    let spec = Spec::magento();
    passes(spec.check_request(
        "GET",
        "/V1/inventory/are-products-salable?skus[0]=A&skus[1]=B&stockId=1",
        None,
    ));
    let message =
        failure(spec.check_request("GET", "/V1/inventory/are-products-salable?stockId=1", None));
    assert!(
        message.contains(r#"required query parameter "skus" is missing"#),
        "{message}"
    );
}

#[test]
fn magento_request_body_is_checked() {
    let spec = Spec::magento();
    let body = json!({ "product": { "sku": "ABC-1", "name": "Blue mug", "price": 12.5 }, "saveOptions": true });
    passes(spec.check_request("PUT", "/V1/products/ABC-1", Some(&body)));
    let message =
        failure(spec.check_request("POST", "/V1/products", Some(&json!({ "sku": "ABC-1" }))));
    assert!(message.contains("POST /V1/products: "), "{message}");
    assert!(
        message.contains(r#"missing required property "product""#),
        "{message}"
    );
    assert!(
        message.contains(r#""/sku": property "sku" is not declared"#),
        "{message}"
    );
    let message = failure(spec.check_request("GET", "/V1/products/ABC-1", Some(&json!({}))));
    assert!(message.contains("declares no request body"), "{message}");
}

#[test]
fn magento_unknown_paths_methods_and_statuses_fail() {
    let spec = Spec::magento();
    let message = failure(spec.check_request("GET", "/V1/nothing-here", None));
    assert!(
        message.contains("no path in the magento spec matches"),
        "{message}"
    );
    let message = failure(spec.check_request("PATCH", "/V1/products/ABC-1", None));
    assert!(
        message.contains("no PATCH operation on /V1/products/{sku}"),
        "{message}"
    );
    // Paths are relative to `/rest/{store}`: the prefix itself is a caller mistake.
    failure(spec.check_request("GET", "/rest/default/V1/products/ABC-1", None));
    // Path parameters carry their declared type.
    let message = failure(spec.check_request("GET", "/V1/orders/abc", None));
    assert!(
        message.contains(r#"GET /V1/orders/{id}: path parameter id="abc": expected integer"#),
        "{message}"
    );
}

// ---------- Acumatica ----------

#[test]
fn acumatica_wrapped_stock_item_passes() {
    let spec = Spec::acumatica();
    passes(spec.check_definition("StockItem", &acumatica_stock_item()));
    passes(spec.check_response("GET", "/StockItem/ABC-1", 200, &acumatica_stock_item()));
    passes(spec.check_response(
        "GET",
        "/StockItem?$top=2",
        200,
        &json!([acumatica_stock_item()]),
    ));
    passes(spec.check_request(
        "PUT",
        "/StockItem",
        Some(&json!({ "InventoryID": { "value": "ABC-1" } })),
    ));
}

#[test]
fn acumatica_unwrapped_value_fails() {
    let spec = Spec::acumatica();
    let message = failure(spec.check_definition("StockItem", &json!({ "InventoryID": "X" })));
    assert!(
        message
            .contains(r#""/InventoryID": expected object, found string "X" (schema StringValue)"#),
        "{message}"
    );
    let message = failure(spec.check_request(
        "PUT",
        "/StockItem?$expand=WarehouseDetails",
        Some(&json!({ "InventoryID": "X" })),
    ));
    assert!(message.contains("PUT /StockItem: "), "{message}");
    assert!(
        message.contains(r#""/InventoryID": expected object"#),
        "{message}"
    );
}

#[test]
fn acumatica_invented_field_and_wrong_value_type_fail() {
    let spec = Spec::acumatica();
    let mut item = acumatica_stock_item();
    item["Price"] = json!({ "value": 1 });
    item["DefaultPrice"] = json!({ "value": "12.50" });
    item["Description"] = json!({ "value": "Mug", "text": "Mug" });
    let message = failure(spec.check_response("GET", "/StockItem/ABC-1", 200, &item));
    assert!(
        message.contains(r#""/Price": property "Price" is not declared (schema StockItem)"#),
        "{message}"
    );
    assert!(
        message.contains(
            r#""/DefaultPrice/value": expected number, found string "12.50" (schema DecimalValue)"#
        ),
        "{message}"
    );
    assert!(
        message.contains(
            r#""/Description/text": property "text" is not declared (schema StringValue)"#
        ),
        "{message}"
    );
}

#[test]
fn acumatica_links_are_rejected_and_delete_is_a_request_flag_only() {
    // The document's `Entity` has id, rowNumber, note, custom, error and files; the official
    // client's Entity adds `delete` (a request flag to delete a detail row) and no `_links`.
    let spec = Spec::acumatica();
    let mut item = acumatica_stock_item();
    item["_links"] = json!({ "self": "/entity/Default/24.200.001/StockItem/5f0e3a1c-2b7d-4c1e-9a55-1d2e3f405162" });
    let message = failure(spec.check_response("GET", "/StockItem/ABC-1", 200, &item));
    assert!(
        message.contains(r#""/_links": property "_links" is not declared (schema StockItem)"#),
        "{message}"
    );

    let mut order = json!({
        "OrderType": { "value": "SO" }, "OrderNbr": { "value": "000123" },
        "Details": [{ "id": "5f0e3a1c-2b7d-4c1e-9a55-1d2e3f405162", "delete": true }]
    });
    assert_conforms(spec.check_request("PUT", "/SalesOrder", Some(&order)));
    let message = failure(spec.check_response("PUT", "/SalesOrder", 200, &order));
    assert!(
        message.contains(
            r#""/Details/0/delete": property "delete" is not declared (schema SalesOrderDetail)"#
        ),
        "{message}"
    );
    order["Details"][0]["delete"] = json!("yes");
    let message = failure(spec.check_request("PUT", "/SalesOrder", Some(&order)));
    assert!(
        message.contains(r#""/Details/0/delete": expected boolean, found string "yes""#),
        "{message}"
    );
    // Only entities carry it: a wrapped value does not.
    let message = failure(spec.check_request(
        "PUT",
        "/SalesOrder",
        Some(&json!({ "OrderNbr": { "value": "1", "delete": true } })),
    ));
    assert!(
        message.contains(
            r#""/OrderNbr/delete": property "delete" is not declared (schema StringValue)"#
        ),
        "{message}"
    );
}

#[test]
fn acumatica_custom_fields_follow_their_discriminator() {
    let spec = Spec::acumatica();
    let mut item = acumatica_stock_item();
    item["custom"]["Item"]["UsrMagentoSync"] =
        json!({ "type": "CustomBooleanField", "value": "yes" });
    let message = failure(spec.check_definition("StockItem", &item));
    assert!(
        message.contains(r#""/custom/Item/UsrMagentoSync/value": expected boolean"#),
        "{message}"
    );
    assert!(message.contains("CustomBooleanField"), "{message}");

    item["custom"]["Item"]["UsrMagentoSync"] = json!({ "type": "CustomMagicField", "value": true });
    let message = failure(spec.check_definition("StockItem", &item));
    assert!(
        message.contains(r#""CustomMagicField", which names no schema"#),
        "{message}"
    );

    item["custom"]["Item"]["UsrMagentoSync"] = json!({ "value": true });
    let message = failure(spec.check_definition("StockItem", &item));
    assert!(
        message.contains(r#"missing required property "type" (schema CustomField)"#),
        "{message}"
    );
}

#[test]
fn acumatica_formats_are_checked() {
    let spec = Spec::acumatica();
    let mut item = acumatica_stock_item();
    item["id"] = json!("not-a-uuid");
    item["LastModifiedDateTime"] = json!({ "value": "2026-11-26 10:05" });
    let message = failure(spec.check_definition("StockItem", &item));
    assert!(
        message.contains(r#""/id": string "not-a-uuid" is not a uuid"#),
        "{message}"
    );
    assert!(message.contains(r#""/LastModifiedDateTime/value": string "2026-11-26 10:05" is not an RFC 3339 date-time"#), "{message}");
    let message =
        failure(spec.check_definition("IntValue", &json!({ "value": 3_000_000_000_i64 })));
    assert!(message.contains("outside int32"), "{message}");
}

#[test]
fn acumatica_key_paths_session_ids_and_literals_resolve() {
    let spec = Spec::acumatica();
    let order = json!({ "OrderType": { "value": "SO" }, "OrderNbr": { "value": "000123" } });
    // `{ids}` spans the slash-delimited key values.
    passes(spec.check_response("GET", "/SalesOrder/SO/000123", 200, &order));
    passes(spec.check_response("DELETE", "/SalesOrder/SO/000123", 204, &Value::Null));
    // A session uuid selects `{id}`.
    passes(spec.check_request(
        "GET",
        "/StockItem/5f0e3a1c-2b7d-4c1e-9a55-1d2e3f405162",
        None,
    ));
    // Literal `$adHocSchema` and a named action win over `{ids}` / `{actionName}`.
    passes(spec.check_request("GET", "/StockItem/$adHocSchema", None));
    let action =
        json!({ "entity": { "OrderType": { "value": "SO" }, "OrderNbr": { "value": "000123" } } });
    passes(spec.check_request("POST", "/SalesOrder/CancelSalesOrder", Some(&action)));
    passes(spec.check_response("POST", "/SalesOrder/CancelSalesOrder", 202, &Value::Null));
    // Files under a multi-segment key.
    passes(spec.check_request("PUT", "/SalesOrder/SO/000123/files/scan.pdf", None));
    // An action body that is not the action's schema fails.
    let message = failure(spec.check_request("POST", "/SalesOrder/CancelSalesOrder", Some(&order)));
    assert!(
        message.contains(r#"missing required property "entity""#),
        "{message}"
    );
}

#[test]
fn acumatica_statuses_and_bodies_must_be_declared() {
    let spec = Spec::acumatica();
    let message = failure(spec.check_response(
        "GET",
        "/StockItem/NOPE",
        404,
        &json!({ "message": "No entity satisfies the condition." }),
    ));
    assert!(
        message.contains("status 404 is not declared (declared: "),
        "{message}"
    );
    let message = failure(spec.check_response("DELETE", "/StockItem/ABC-1", 204, &json!({})));
    assert!(message.contains("declares no body"), "{message}");
    // HttpError: `exceptionMessage` is nullable, `message` is not.
    passes(spec.check_response(
        "GET",
        "/StockItem",
        500,
        &json!({ "message": "An error has occurred.", "exceptionMessage": null }),
    ));
    let message =
        failure(spec.check_response("GET", "/StockItem", 401, &json!({ "message": null })));
    assert!(
        message.contains(r#""/message": expected string, found null (schema HttpError)"#),
        "{message}"
    );
}

#[test]
fn acumatica_query_parameters_are_declared_ones() {
    let spec = Spec::acumatica();
    passes(spec.check_request(
        "GET",
        "/StockItem?$filter=LastModifiedDateTime%20gt%20datetimeoffset'2026-11-26T10:00:00Z'&$top=100&$skip=0&$expand=WarehouseDetails",
        None,
    ));
    let message = failure(spec.check_request("GET", "/StockItem?$orderby=InventoryID", None));
    assert!(
        message.contains(r#"query parameter "$orderby" is not declared"#),
        "{message}"
    );
    let message = failure(spec.check_request("GET", "/StockItem?$top=many", None));
    assert!(message.contains("expected integer"), "{message}");
}

#[test]
fn full_url_paths_are_made_relative_to_each_base() {
    let (magento, acumatica) = (Spec::magento(), Spec::acumatica());
    assert_eq!(
        magento.relative_path("/magento/rest/default/V1/products/A%2F1"),
        Some("/V1/products/A%2F1")
    );
    assert_eq!(
        magento.relative_path("/rest/all/V1/products/base-prices"),
        Some("/V1/products/base-prices")
    );
    assert_eq!(
        magento.relative_path("/rest/V1/orders/5"),
        Some("/V1/orders/5")
    );
    assert_eq!(magento.relative_path("/magento/__sandbox/state"), None);
    assert_eq!(
        acumatica.relative_path("/acumatica/entity/Default/24.200.001/SalesOrder/SO/000123"),
        Some("/SalesOrder/SO/000123")
    );
    assert_eq!(
        acumatica.relative_path("/acumatica/entity/auth/login"),
        None
    );
    assert_eq!(
        acumatica.relative_path("/entity/Default/24.200.0011/StockItem"),
        None
    );
    // And what they give is what the checks take.
    let path = acumatica
        .relative_path("/acumatica/entity/Default/24.200.001/StockItem/%24adHocSchema")
        .unwrap();
    assert_eq!(
        acumatica.route("GET", path).as_deref(),
        Ok("/StockItem/$adHocSchema")
    );
}

// ---------- the documents themselves ----------

/// A concrete path for a template: uuids for Acumatica's session `{id}`, two key values for
/// its `{ids}`, and "1" (an integer, a number and a string alike) for everything else.
fn concrete_path(spec_is_acumatica: bool, template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "{id}" if spec_is_acumatica => "5f0e3a1c-2b7d-4c1e-9a55-1d2e3f405162".to_string(),
            "{ids}" if spec_is_acumatica => "K1/K2".to_string(),
            s if s.starts_with('{') => "1".to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_operation_is_reached_through_its_own_template() {
    for (spec, is_acumatica) in [(Spec::magento(), false), (Spec::acumatica(), true)] {
        let operations = spec.operations();
        assert!(operations.len() > 500, "{} operations", operations.len());
        let shadowed: Vec<String> = operations
            .iter()
            .filter_map(|(method, template)| {
                let path = concrete_path(is_acumatica, template);
                match spec.route(method, &path) {
                    Ok(found) if found == *template => None,
                    other => Some(format!("{method} {template} (as {path}) -> {other:?}")),
                }
            })
            .collect();
        assert!(
            shadowed.is_empty(),
            "operations another template takes: {shadowed:#?}"
        );
    }
}

#[test]
fn documents_have_no_broken_refs() {
    for spec in [Spec::magento(), Spec::acumatica()] {
        let broken = spec.broken_refs();
        assert!(broken.is_empty(), "{broken:#?}");
    }
}

#[test]
fn documents_use_only_supported_keywords() {
    for spec in [Spec::magento(), Spec::acumatica()] {
        let unsupported = spec.unsupported_keywords();
        assert!(
            unsupported.is_empty(),
            "unsupported schema keywords: {unsupported:#?}"
        );
    }
}

#[test]
fn documents_load_once_and_quickly() {
    let started = std::time::Instant::now();
    let (magento, acumatica) = (Spec::magento(), Spec::acumatica());
    assert!(
        std::ptr::eq(magento, Spec::magento()),
        "Spec::magento() must be loaded once"
    );
    eprintln!(
        "spec load: magento {:?}, acumatica {:?} (this call {:?})",
        magento.load_time(),
        acumatica.load_time(),
        started.elapsed()
    );
    // Generous bound for a loaded 2-core machine; the point is "once per process, not per call".
    assert!(magento.load_time().as_secs() < 20 && acumatica.load_time().as_secs() < 20);
}
