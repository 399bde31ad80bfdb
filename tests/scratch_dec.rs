use rust_decimal::Decimal;
#[test]
fn dec() {
    for s in [
        "1_000",
        "_1",
        "1_",
        " 1",
        "1 ",
        "+1",
        "1.",
        ".5",
        "00012",
        "-0",
        "0x10",
        "1e5",
        "١٢٣",
        "1.0000000000000000000000000001",
        "1.00000000000000000000000000001",
        "99999999999999999999999999999.9",
        "79228162514264337593543950336",
        "-",
        "+",
        ".",
        "_",
        "",
        "0.",
        "-.5",
        "1__0",
        "1._5",
    ] {
        eprintln!("{s:?} -> {:?}", Decimal::from_str_exact(s));
    }
    for s in [
        "1e400",
        "1e-29",
        "1.5e28",
        "1e+5",
        "1E5",
        "1e",
        "e5",
        "1.00000000000000000000000000001e0",
        "1_0e2",
        "5e-0",
        "0e0",
    ] {
        eprintln!("sci {s:?} -> {:?}", Decimal::from_scientific(s));
    }
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let z = "0".repeat(n);
    eprintln!("zeros {n}: {:?}", Decimal::from_str_exact(&z));
    let z = format!("0.{}", "0".repeat(n));
    eprintln!(
        "zeros after point {n}: {:?}",
        Decimal::from_str_exact(&z).map(|d| d.to_string().len())
    );
    let u = "_".repeat(n);
    eprintln!(
        "underscores {n}: {:?}",
        Decimal::from_str_exact(&format!("1{u}"))
    );
}
