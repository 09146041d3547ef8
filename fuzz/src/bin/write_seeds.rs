//! Writes the starting corpus of each fuzz target into `<dir>/<target>/` (scripts/fuzz.sh).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    for (i, (target, bytes)) in terraform_provider_hybrid::fuzzing::seeds()
        .into_iter()
        .enumerate()
    {
        let target_dir = dir.join(target);
        std::fs::create_dir_all(&target_dir)?;
        std::fs::write(target_dir.join(format!("seed-{i:03}")), bytes)?;
    }
    Ok(())
}
