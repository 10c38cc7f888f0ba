//! Writes `gregor_<codec>.bin`, one batch per codec encoded by our builder from
//! `tests/fixtures/expected.txt`, so that `tests/fixtures/generate.py --verify DIR` can check
//! that kafka-python reads what we write.
//!
//! Usage: `cargo run -p gregor-protocol --example emit_batches -- DIR`

#[path = "../tests/fixtures/spec.rs"]
mod spec;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: emit_batches DIR (where gregor_<codec>.bin files go)");
    let text = include_str!("../tests/fixtures/expected.txt");
    let expected = spec::parse(text);
    std::fs::create_dir_all(&dir)?;
    for (name, codec) in spec::CODECS {
        let path = std::path::Path::new(&dir).join(format!("gregor_{name}.bin"));
        std::fs::write(&path, spec::build(&expected, codec))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
