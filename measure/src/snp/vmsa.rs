//! The initial VMSA (VM save area) of each vCPU: the register state an SEV-ES/SNP vCPU starts
//! from, encrypted and measured as a VMSA page at launch.
//!
//! Offsets come from the AMD64 Architecture Programmer's Manual, Vol. 2, Appendix B, Table B-4
//! "VMSA Layout, State Save Area for SEV-ES" (Linux `struct sev_es_save_area`). A VMSA at reset
//! is almost all zeros; [`SaveArea`] holds exactly the registers that a VMM sets to non-zero
//! values, and the VMM-specific differences (QEMU/KVM, AWS EC2, Google GCE) that
//! sev-snp-measure documents from observed launches.

use serde::Serialize;

use super::gctx::PAGE_SIZE;

/// Byte offsets in the VMSA (APM Vol. 2, Table B-4).
mod offset {
    pub const ES: usize = 0x000;
    pub const CS: usize = 0x010;
    pub const SS: usize = 0x020;
    pub const DS: usize = 0x030;
    pub const FS: usize = 0x040;
    pub const GS: usize = 0x050;
    pub const GDTR: usize = 0x060;
    pub const LDTR: usize = 0x070;
    pub const IDTR: usize = 0x080;
    pub const TR: usize = 0x090;
    pub const EFER: usize = 0x0d0;
    pub const CR4: usize = 0x148;
    pub const CR0: usize = 0x158;
    pub const DR7: usize = 0x160;
    pub const DR6: usize = 0x168;
    pub const RFLAGS: usize = 0x170;
    pub const RIP: usize = 0x178;
    pub const G_PAT: usize = 0x268;
    pub const RDX: usize = 0x310;
    pub const SEV_FEATURES: usize = 0x3b0;
    pub const XCR0: usize = 0x3e8;
    pub const MXCSR: usize = 0x408;
    pub const X87_FCW: usize = 0x410;
}

/// The VMM that creates the vCPUs; each sets a few reset registers its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Vmm {
    /// QEMU with KVM (also what most on-premises stacks and Azure's host-side tests use).
    #[serde(rename = "QEMU")]
    Qemu,
    /// AWS EC2 (Nitro): different segment attributes, RDX and FPU state; CPUID page measured last.
    #[serde(rename = "ec2")]
    Ec2,
    /// Google Compute Engine: its own PAT and FPU state; SEC memory launched UNMEASURED.
    #[serde(rename = "gce")]
    Gce,
}

impl Vmm {
    /// The name sev-snp-measure uses for `--vmm-type`.
    pub fn name(self) -> &'static str {
        match self {
            Vmm::Qemu => "QEMU",
            Vmm::Ec2 => "ec2",
            Vmm::Gce => "gce",
        }
    }

    /// All VMM types.
    pub const ALL: [Vmm; 3] = [Vmm::Qemu, Vmm::Ec2, Vmm::Gce];
}

impl std::str::FromStr for Vmm {
    type Err = String;

    /// Case-insensitive: `QEMU`, `qemu`, `ec2`, `EC2`, `gce`, `GCE`.
    fn from_str(s: &str) -> Result<Self, String> {
        Vmm::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown VMM type '{s}' (expected QEMU, ec2 or gce)"))
    }
}

/// A VMCB segment register (APM Vol. 2, Table B-1: selector, attributes, limit, base).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Selector.
    pub selector: u16,
    /// Attributes in the VMCB's compressed 12-bit form.
    pub attrib: u16,
    /// Limit.
    pub limit: u32,
    /// Base address.
    pub base: u64,
}

impl Segment {
    /// Serialized size.
    pub const LEN: usize = 16;

    const fn new(selector: u16, attrib: u16, limit: u32, base: u64) -> Self {
        Segment { selector, attrib, limit, base }
    }

    fn write(&self, page: &mut [u8], at: usize) {
        page[at..at + 2].copy_from_slice(&self.selector.to_le_bytes());
        page[at + 2..at + 4].copy_from_slice(&self.attrib.to_le_bytes());
        page[at + 4..at + 8].copy_from_slice(&self.limit.to_le_bytes());
        page[at + 8..at + 16].copy_from_slice(&self.base.to_le_bytes());
    }
}

const _: () = assert!(offset::TR + Segment::LEN <= offset::EFER);
const _: () = assert!(offset::X87_FCW + 2 <= PAGE_SIZE);

/// The non-zero registers of a vCPU's VMSA at reset; every other byte of the page is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveArea {
    /// ES, CS, SS, DS, FS, GS, GDTR, LDTR, IDTR, TR.
    pub es: Segment,
    /// CS: selector 0xF000, base = the upper 16 bits of the reset address.
    pub cs: Segment,
    /// SS.
    pub ss: Segment,
    /// DS.
    pub ds: Segment,
    /// FS.
    pub fs: Segment,
    /// GS.
    pub gs: Segment,
    /// GDTR.
    pub gdtr: Segment,
    /// LDTR.
    pub ldtr: Segment,
    /// IDTR.
    pub idtr: Segment,
    /// TR.
    pub tr: Segment,
    /// EFER: KVM sets EFER.SVME (0x1000) for SEV-ES guests.
    pub efer: u64,
    /// CR4: KVM sets CR4.MCE (0x40).
    pub cr4: u64,
    /// CR0: ET (0x10), as at x86 reset.
    pub cr0: u64,
    /// DR7 reset value 0x400.
    pub dr7: u64,
    /// DR6 reset value 0xFFFF0FF0.
    pub dr6: u64,
    /// RFLAGS reset value 0x2.
    pub rflags: u64,
    /// RIP: the lower 16 bits of the reset address.
    pub rip: u64,
    /// G_PAT: the guest PAT MSR.
    pub g_pat: u64,
    /// RDX: the CPUID family/model/stepping signature at reset.
    pub rdx: u64,
    /// SEV_FEATURES: the guest features (bit 0 SNPActive, bit 5 DebugSwap, …).
    pub sev_features: u64,
    /// XCR0 reset value 0x1 (x87 state enabled).
    pub xcr0: u64,
    /// MXCSR (0x1F80 on QEMU, 0 on EC2 and GCE).
    pub mxcsr: u32,
    /// x87 FCW (0x37F on QEMU, 0 on EC2 and GCE).
    pub x87_fcw: u16,
}

/// x86 reset address of the bootstrap processor.
pub const BSP_RESET_EIP: u32 = 0xffff_fff0;
/// The PAT MSR at reset (APM Vol. 2, §A.3).
pub const PAT_RESET: u64 = 0x0007_0406_0007_0406;
/// The PAT GCE's hypervisor puts in the VMSA instead.
pub const GCE_PAT: u64 = 0x0007_0106;

impl SaveArea {
    /// The reset state of a vCPU starting at `eip` under `vmm`.
    ///
    /// `vcpu_sig` is the CPUID signature QEMU puts in RDX; EC2 and GCE put 0x600 there
    /// regardless.
    pub fn reset(eip: u32, sev_features: u64, vcpu_sig: u32, vmm: Vmm) -> Self {
        // (CS attributes, SS attributes, TR attributes, RDX, MXCSR, FCW, PAT)
        let (cs, ss, tr, rdx, mxcsr, fcw, g_pat) = match vmm {
            Vmm::Qemu => (0x9b, 0x93, 0x8b, vcpu_sig as u64, 0x1f80, 0x37f, PAT_RESET),
            // EC2 launches the BSP with a non-accessed code segment.
            Vmm::Ec2 => {
                let cs = if eip == BSP_RESET_EIP { 0x9a } else { 0x9b };
                (cs, 0x92, 0x83, 0x600, 0, 0, PAT_RESET)
            }
            Vmm::Gce => (0x9b, 0x93, 0x8b, 0x600, 0, 0, GCE_PAT),
        };
        let data = Segment::new(0, 0x93, 0xffff, 0);
        SaveArea {
            es: data,
            cs: Segment::new(0xf000, cs, 0xffff, (eip & 0xffff_0000) as u64),
            ss: Segment::new(0, ss, 0xffff, 0),
            ds: data,
            fs: data,
            gs: data,
            gdtr: Segment::new(0, 0, 0xffff, 0),
            ldtr: Segment::new(0, 0x82, 0xffff, 0),
            idtr: Segment::new(0, 0, 0xffff, 0),
            tr: Segment::new(0, tr, 0xffff, 0),
            efer: 0x1000,
            cr4: 0x40,
            cr0: 0x10,
            dr7: 0x400,
            dr6: 0xffff_0ff0,
            rflags: 0x2,
            rip: (eip & 0xffff) as u64,
            g_pat,
            rdx,
            sev_features,
            xcr0: 0x1,
            mxcsr,
            x87_fcw: fcw,
        }
    }

    /// The 4 KiB VMSA page.
    pub fn to_page(&self) -> Vec<u8> {
        use offset::*;
        let mut p = vec![0u8; PAGE_SIZE];
        for (seg, at) in [
            (&self.es, ES),
            (&self.cs, CS),
            (&self.ss, SS),
            (&self.ds, DS),
            (&self.fs, FS),
            (&self.gs, GS),
            (&self.gdtr, GDTR),
            (&self.ldtr, LDTR),
            (&self.idtr, IDTR),
            (&self.tr, TR),
        ] {
            seg.write(&mut p, at);
        }
        for (v, at) in [
            (self.efer, EFER),
            (self.cr4, CR4),
            (self.cr0, CR0),
            (self.dr7, DR7),
            (self.dr6, DR6),
            (self.rflags, RFLAGS),
            (self.rip, RIP),
            (self.g_pat, G_PAT),
            (self.rdx, RDX),
            (self.sev_features, SEV_FEATURES),
            (self.xcr0, XCR0),
        ] {
            p[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        p[MXCSR..MXCSR + 4].copy_from_slice(&self.mxcsr.to_le_bytes());
        p[X87_FCW..X87_FCW + 2].copy_from_slice(&self.x87_fcw.to_le_bytes());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmm_names_are_case_insensitive() {
        for (s, v) in
            [("QEMU", Vmm::Qemu), ("qemu", Vmm::Qemu), ("EC2", Vmm::Ec2), ("gce", Vmm::Gce), ("GcE", Vmm::Gce)]
        {
            assert_eq!(s.parse::<Vmm>(), Ok(v), "{s}");
        }
        assert_eq!("kvm".parse::<Vmm>(), Err("unknown VMM type 'kvm' (expected QEMU, ec2 or gce)".into()));
    }

    #[test]
    fn bsp_page_fields() {
        let p = SaveArea::reset(BSP_RESET_EIP, 0x1, 0x00a0_0f11, Vmm::Qemu).to_page();
        // CS: selector 0xf000, attrib 0x9b, limit 0xffff, base 0xffff0000.
        assert_eq!(&p[0x10..0x20], &[0, 0xf0, 0x9b, 0, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]);
        assert_eq!(&p[0x178..0x180], &0xfff0u64.to_le_bytes());
        assert_eq!(&p[0x310..0x318], &0x00a0_0f11u64.to_le_bytes());
        assert_eq!(&p[0x3b0..0x3b8], &1u64.to_le_bytes());
        assert_eq!(&p[0x408..0x40c], &0x1f80u32.to_le_bytes());
        assert_eq!(&p[0x410..0x412], &0x37fu16.to_le_bytes());
        assert!(p[0x412..].iter().all(|&b| b == 0));
    }
}
