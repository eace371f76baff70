//! The `nodeimg` binary: everything lives in the library so tests can drive it too.

fn main() -> std::process::ExitCode {
    restore_sigpipe();
    nodeimg::main()
}

/// Rust ignores SIGPIPE, so `nodeimg … | head` would make every `println!` panic. Restore the
/// default disposition: like any Unix filter, nodeimg then ends quietly when its reader goes away.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: called first thing in `main`, before any thread exists; `signal` with SIG_DFL
    // installs no handler code and touches no Rust state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
