//! Tells the tests whether the machine that builds them (the one `cargo test` runs them on)
//! has AVX-512F, so that the eight-lane SHA-384 test is reported as `ignored` on a machine
//! without it, instead of passing without having run (`cfg(nodeimg_test_avx512)`). Only tests
//! read this: the library itself detects the CPU at run time.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(nodeimg_test_avx512)");
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(target_arch = "x86_64")]
    {
        let target_is_host = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
        if target_is_host && std::arch::is_x86_feature_detected!("avx512f") {
            println!("cargo::rustc-cfg=nodeimg_test_avx512");
        }
    }
}
