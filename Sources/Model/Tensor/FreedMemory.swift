import CKernels

/// The process's allocator settings for inference.
///
/// Every layer writes its output into a new array, and a forward pass frees arrays of megabytes
/// (one 112 x 112 x 96 map is 4.8 MB) as fast as it makes them. With glibc's defaults those large
/// blocks go back to the kernel on free (`munmap`, or trimming the top of the heap), so the next
/// layer's output is fresh pages that fault in one by one, zeroed by the kernel, a large share of a
/// batch-of-one EfficientNet-Lite0 pass (bench/image/efficientnet.sh; figures in bench/image/README.md).
public enum FreedMemory {
    /// Keeps freed blocks of up to 32 MB in the process for reuse instead of returning them to the
    /// kernel, and trims the heap only past 128 MB of free space. The resident size then stays at
    /// its peak rather than shrinking between batches. Call once at start-up, before the first forward pass; it changes the whole process.
    /// - Returns: whether the allocator took the settings.
    @discardableResult
    public static func keepForReuse() -> Bool {
        // A refusal leaves glibc's defaults: correct, only slower.
        pck_keep_freed_memory(32 << 20, 128 << 20) == 1
    }
}
