import CKernels

/// Which bodies of the C kernels (`Sources/CKernels`) this process runs: each kernel picks the
/// widest one the CPU and the OS support, once, from CPUID.
public enum KernelBodies {
    /// The widest body in use: "avx512" (every kernel that has an AVX-512 body runs it, the others
    /// their AVX2 one), "avx2" or "portable". For the start-up log and benchmark reports.
    public static var widest: String {
        if pck_uses_avx512() == 1 { return "avx512" }
        return pck_uses_avx2() == 1 ? "avx2" : "portable"
    }
}
