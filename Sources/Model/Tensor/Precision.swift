import CKernels

/// The number format of the encoders' matrix products: the BERT layers' four linear products, and
/// EfficientNet-Lite's 1x1 convs wide enough for their role (`EfficientNetLite.bf16MinimumInputs`:
/// expand and head from 32 inputs, project from 240); attention, GELU, LayerNorm, the other convs,
/// the heads and every other kernel stay fp32.
///
/// - `fp32`: the weights and products in fp32, the reference the golden tests hold the encoder to.
/// - `bf16`: the weights packed once to bfloat16 (half the memory, one copy each), each row of
///   activations rounded to bf16 inside the product, products summed in fp32
///   (`pck_gemm_packed_bf16`). Meant for CPUs with AVX512-BF16, where the product runs AMX tile
///   multiply-adds where the CPU has AMX-BF16, else `vdpbf16ps`; elsewhere it runs a portable
///   body (the same sums, much slower), which tests use to check the numerics on every CPU.
public enum Precision: String, Sendable, CaseIterable, CustomStringConvertible {
    case fp32
    case bf16

    public var description: String { rawValue }

    /// Whether this CPU (and its OS) runs bf16 products in hardware: AVX512-BF16 with AVX-512
    /// enabled, read from CPUID once at start-up.
    public static let cpuHasBF16 = pck_uses_avx512_bf16() == 1

    /// Whether the bf16 products run on AMX tiles (AMX-BF16, and the OS gives this process the
    /// tile state), read once at start-up.
    public static let cpuHasAMX = pck_uses_amx_bf16() == 1

    /// Multiply-adds per second of `vdpbf16ps` over those of fp32 FMAs on this core, measured once
    /// (about a millisecond, `pck_bf16_rate`); 0 without AVX512-BF16. About 2 where the
    /// instruction runs at the FMA's rate (32 multiply-adds to the FMA's 16), 1 where at half of
    /// it: 0.50 on the Intel Xeon (Emerald Rapids) of 2026-12-06, where the `vdpbf16ps` body ran
    /// the encoder at 0.6x fp32's speed from batch 8 up (bench/model's `PRECISION_AB=bf16`), and
    /// where the AMX body runs instead.
    public static let bf16Rate = pck_bf16_rate()

    /// The least `bf16Rate` at which `auto` takes bf16: below it bf16 products lose to fp32 where
    /// the weights are in cache (half the weight bytes only help when they stream from memory).
    public static let automaticBF16Rate = 1.5

    /// What the `auto` setting picks on this CPU: bf16 where the products run on AMX tiles, or
    /// where the CPU has AVX512-BF16 and runs it at `automaticBF16Rate` or more; else fp32. bf16
    /// passed the accuracy guards on all-MiniLM-L6-v2, EfficientNet-Lite0 and the default bundle
    /// (`BF16AccuracyTests`, `BF16ImageAccuracyTests`); a model that fails them should be pinned
    /// to fp32.
    public static var automatic: Precision {
        cpuHasBF16 && (cpuHasAMX || bf16Rate >= automaticBF16Rate) ? .bf16 : .fp32
    }

    /// Why `auto` picks what it does here, for the start-up log.
    public static var automaticReason: String {
        guard cpuHasBF16 else { return "no AVX512-BF16 on this CPU" }
        if cpuHasAMX { return "AMX-BF16 tiles on this CPU" }
        let rate = (bf16Rate * 100).rounded() / 100
        return "AVX512-BF16 multiply-adds at \(rate)x the fp32 FMA rate here (bf16 from \(automaticBF16Rate)x)"
    }
}
