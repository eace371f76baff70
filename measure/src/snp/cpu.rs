//! vCPU signatures: the CPUID family/model/stepping value QEMU puts in RDX of every VMSA.
//!
//! The encoding is CPUID Fn0000_0001_EAX (AMD CPUID Specification, publication #25481); the
//! named types are the AMD models of QEMU's `builtin_x86_defs`, as sev-snp-measure lists them.

/// Packs family, model and stepping into the CPUID Fn0000_0001_EAX layout: stepping [3:0],
/// base model [7:4], base family [11:8], extended model [19:16], extended family [27:20].
/// Families above 0xF are written as 0xF plus the excess in the extended family.
pub const fn cpu_sig(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_high) = if family > 0xf { (0xf, (family - 0xf) & 0xff) } else { (family, 0) };
    (family_high << 20) | (((model >> 4) & 0xf) << 16) | (family_low << 8) | ((model & 0xf) << 4) | (stepping & 0xf)
}

/// `(name, family, model, stepping)` of each vCPU type `--vcpu-type` accepts.
pub const VCPU_TYPES: &[(&str, u32, u32, u32)] = &[
    ("EPYC", 23, 1, 2),
    ("EPYC-v1", 23, 1, 2),
    ("EPYC-v2", 23, 1, 2),
    ("EPYC-IBPB", 23, 1, 2),
    ("EPYC-v3", 23, 1, 2),
    ("EPYC-v4", 23, 1, 2),
    ("EPYC-Rome", 23, 49, 0),
    ("EPYC-Rome-v1", 23, 49, 0),
    ("EPYC-Rome-v2", 23, 49, 0),
    ("EPYC-Rome-v3", 23, 49, 0),
    ("EPYC-Milan", 25, 1, 1),
    ("EPYC-Milan-v1", 25, 1, 1),
    ("EPYC-Milan-v2", 25, 1, 1),
    ("EPYC-Genoa", 25, 17, 0),
    ("EPYC-Genoa-v1", 25, 17, 0),
    ("EPYC-Turin", 26, 0, 0),
];

/// The signature of a named vCPU type (case-insensitive), or `None` if unknown.
pub fn vcpu_type_sig(name: &str) -> Option<u32> {
    VCPU_TYPES.iter().find(|(n, ..)| n.eq_ignore_ascii_case(name)).map(|&(_, f, m, s)| cpu_sig(f, m, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_signatures() {
        // CPUID values of real parts: Naples 0x00800f12, Rome 0x00830f10, Milan 0x00a00f11,
        // Genoa 0x00a10f10, Turin 0x00b00f00.
        for (name, sig) in [
            ("EPYC-v4", 0x0080_0f12),
            ("EPYC-Rome", 0x0083_0f10),
            ("EPYC-Milan", 0x00a0_0f11),
            ("epyc-genoa", 0x00a1_0f10),
            ("EPYC-Turin", 0x00b0_0f00),
        ] {
            assert_eq!(vcpu_type_sig(name), Some(sig), "{name}");
        }
        assert_eq!(vcpu_type_sig("Skylake"), None);
        assert_eq!(cpu_sig(6, 0x8f, 8), 0x0008_06f8);
    }
}
