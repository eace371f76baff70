//! Single-stream throughput of the workspace's hash functions, measured the way
//! `openssl speed -seconds S -bytes 16384 ALG` measures OpenSSL's: one 16 KiB buffer hashed
//! (a whole digest each time) over and over for S seconds of this thread's CPU time (openssl
//! speed, too, divides by user CPU time unless given `-elapsed`), so that other load on the
//! machine does not count against either side.
//!
//! `cargo run --release -p digest-alg --example throughput -- sha384 [SECONDS]` prints the
//! algorithm and the bytes hashed per second; `scripts/bench.d/05-digest.sh` sets it beside
//! `openssl speed`. A third argument N > 1 hashes N such buffers at once, as N messages given
//! to `HashAlg::hash_many` (SHA-384/512 four at a time in vector lanes, SHA-1 and SHA-256 four
//! with their rounds interleaved, where the CPU can), and prints the bytes of all N hashed per
//! second of the one thread.

#![allow(unsafe_code)] // clock_gettime

use digest_alg::HashAlg;

/// This thread's CPU time in seconds.
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: throughput ALG [SECONDS [MESSAGES]] (ALG: sha1, sha256, sha384, sha512; MESSAGES 1-64)";
    let Some(alg) = args.next().and_then(|a| a.parse::<HashAlg>().ok()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let secs: f64 = match args.next().map(|s| s.parse()) {
        None => 1.0,
        Some(Ok(s)) if s > 0.0 && s <= 60.0 => s,
        Some(_) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let messages: usize = match args.next().map(|s| s.parse()) {
        None => 1,
        Some(Ok(n)) if (1..=64).contains(&n) => n,
        Some(_) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let buf: Vec<u8> = (0..16384u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::hint::black_box(alg.hash(&buf)); // warm up
    let start = cpu_seconds();
    let mut bytes = 0u64;
    let mut spent = 0.0;
    while spent < secs {
        if messages == 1 {
            for _ in 0..16 {
                std::hint::black_box(alg.hash(std::hint::black_box(&buf)));
            }
            bytes += 16 * buf.len() as u64;
        } else {
            let parts: [&[u8]; 1] = [&buf];
            let jobs: Vec<(HashAlg, &[&[u8]])> = vec![(alg, &parts[..]); messages];
            for _ in 0..4 {
                std::hint::black_box(HashAlg::hash_many(std::hint::black_box(&jobs)));
            }
            bytes += 4 * (messages * buf.len()) as u64;
        }
        spent = cpu_seconds() - start;
    }
    println!("{alg} {:.0}", bytes as f64 / spent);
}
