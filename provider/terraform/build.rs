//! Lays out the release binary so that the code an RPC runs sits together.
//!
//! Why: most of the plugin's resident memory is pages of its own `.text`. Linux maps file pages
//! around each one that faults (64 KiB at a time), and the functions a Terraform run executes —
//! about a third of the code — are scattered across the whole 9 MB section, so nearly all of it
//! ended up resident. `link/hot-symbols.txt` lists the functions a profiled plan, apply, re-plan
//! and destroy executed (hottest first); LLD places them first, and the cold rest (cloud drivers'
//! error paths, import, migrations, ...) stays on disk until something needs it.
//!
//! The list is a hint: a symbol it names that the build no longer has is skipped, so a stale list
//! only costs memory, never correctness. `scripts/hot-symbols.py` regenerates it and `make bench`
//! reports how much of it still matches. Applied to release builds for x86_64 Linux, where Rust's
//! default linker is LLD (Rust >= 1.90), unless RUSTFLAGS choose the linker themselves;
//! `HYBRID_LINK_ORDER=off` turns it off in any case, and `HYBRID_LINK_ORDER_FILE` names another
//! list (the profile-guided build's, which `scripts/pgo.sh` writes).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=HYBRID_LINK_ORDER");
    println!("cargo:rerun-if-env-changed=HYBRID_LINK_ORDER_FILE");
    let Some(dir) = env::var_os("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = PathBuf::from(dir).join("link").join("hot-symbols.txt");
    let enabled = !matches!(
        env::var("HYBRID_LINK_ORDER").as_deref(),
        Ok("off") | Ok("0") | Ok("false")
    );
    let release = env::var("PROFILE").as_deref() == Ok("release");
    let lld_target = env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu");
    // A linker picked by flags (mold, bfd, no self-contained LLD) may not know the option.
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = [
        "fuse-ld",
        "linker-features",
        "link-self-contained",
        "linker-flavor",
    ]
    .iter()
    .any(|flag| rustflags.contains(flag));
    // A build may bring its own list: the profile-guided build (scripts/pgo.sh) writes one from
    // its training profile, since it inlines most of the small functions the committed list
    // names. Named by content, so a new list is a changed variable and relinks.
    let order = env::var_os("HYBRID_LINK_ORDER_FILE")
        .map(PathBuf::from)
        .unwrap_or(order);
    if enabled && release && lld_target && !own_linker && order.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
