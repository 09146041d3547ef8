//! Splits `data/catalog.json` for embedding: its ~19k offers become a static table of plain
//! `Offer` values compiled into the binary, and the rest stays JSON (parsed on first use).
//!
//! Why: every plugin process Terraform starts needs the catalog, and parsing the offers from JSON
//! was about 23 M instructions per process and kept both the JSON text and a heap copy of the
//! table resident. A static table needs no parsing and no copy; only its pages that placement
//! reads are loaded. `load.rs` tests that the result equals parsing the whole document.

use std::env;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=data/catalog.json");
    let text = fs::read_to_string("data/catalog.json")?;
    let mut doc: serde_json::Value = serde_json::from_str(&text)?;
    let Some(fields) = doc.as_object_mut() else {
        return Err("data/catalog.json: not a JSON object".into());
    };
    let offers = fields
        .insert("offers".into(), serde_json::Value::Array(Vec::new()))
        .ok_or("data/catalog.json: no `offers`")?;
    let rows = offers
        .as_array()
        .ok_or("data/catalog.json: `offers` is not an array")?;

    let mut table = String::with_capacity(rows.len() * 48);
    table.push_str("&[\n");
    for (i, row) in rows.iter().enumerate() {
        let bad = || format!("data/catalog.json: offer {i} is not [region, type, price, spot]");
        let cells = row.as_array().filter(|c| c.len() == 4).ok_or_else(bad)?;
        let region = cells[0].as_u64().ok_or_else(bad)?;
        let instance_type = cells[1].as_u64().ok_or_else(bad)?;
        let on_demand = price_bits(&cells[2]).ok_or_else(bad)?;
        if cells[3].is_null() {
            writeln!(table, "o({region},{instance_type},{on_demand:#x}),")?;
        } else {
            let spot = price_bits(&cells[3]).ok_or_else(bad)?;
            writeln!(
                table,
                "s({region},{instance_type},{on_demand:#x},{spot:#x}),"
            )?;
        }
    }
    table.push_str("]\n");

    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?);
    fs::write(out.join("offers.rs"), table)?;
    fs::write(out.join("catalog-without-offers.json"), doc.to_string())?;
    Ok(())
}

/// The exact bits of a price, parsed from its text by the standard library (correctly rounded,
/// as the runtime JSON path is for prices of this length; the equality test checks every one).
fn price_bits(v: &serde_json::Value) -> Option<u64> {
    let n = v.as_number()?;
    n.to_string().parse::<f64>().ok().map(f64::to_bits)
}
