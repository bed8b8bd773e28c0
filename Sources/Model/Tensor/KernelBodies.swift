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

    /// The body of the bf16 packed product: "amx-bf16" (tile multiply-adds), "avx512-bf16"
    /// (`vdpbf16ps`) or "portable".
    public static var bf16: String {
        if pck_uses_amx_bf16() == 1 { return "amx-bf16" }
        return pck_uses_avx512_bf16() == 1 ? "avx512-bf16" : "portable"
    }

    /// The encoders' products at `precision` and the kernels around them, for the start-up
    /// log, `classify`'s summary and benchmark reports: "fp32 (avx512)" or
    /// "bf16 (amx-bf16 products, avx512 otherwise)".
    public static func describe(_ precision: Precision) -> String {
        switch precision {
        case .fp32: return "fp32 (\(widest))"
        case .bf16: return "bf16 (\(bf16) products, \(widest) otherwise)"
        }
    }
}
