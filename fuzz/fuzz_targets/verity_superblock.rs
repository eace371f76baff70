//! Arbitrary bytes as a dm-verity superblock: parsing, turning it into parameters and laying out
//! the tree must return errors, never panic or overflow (a data_blocks near 2^63 included).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sb) = verity::Superblock::parse(data, 0) else { return };
    let offset = data.first().map_or(0, |b| u64::from(*b) << 9);
    let Ok(params) = sb.params(offset) else { return };
    if let Ok(layout) = verity::Layout::new(&params) {
        assert!(layout.hash_device_size >= layout.tree_offset);
        for l in &layout.levels {
            assert!(l.offset >= layout.tree_offset && l.offset < layout.hash_device_size);
        }
    }
});
