/// JPEG bytes to an image encoder's input values, with the failure a post gets when that fails.
struct ImageLoader: Sendable {
    let decoder: JPEGDecoder
    let preprocessor: ImagePreprocessor

    init(config: ImagePreprocessConfig, limits: JPEGDecodeLimits) throws(PreprocessError) {
        decoder = JPEGDecoder(limits: limits)
        preprocessor = try ImagePreprocessor(config: config)
    }

    func load(_ jpeg: [UInt8]) -> Result<[Float], PostFailure> {
        do {
            let values = try [Float](unsafeUninitializedCapacity: preprocessor.valuesPerImage) { buffer, count in
                buffer.initialize(repeating: 0)
                count = preprocessor.valuesPerImage
                _ = try jpeg.withUnsafeBytes { bytes in
                    try preprocessor.decodeAndRun(jpeg: bytes, decoder: decoder, into: buffer)
                }
            }
            return .success(values)
        } catch let error as JPEGError {
            return .failure(PostFailure(code: "undecodable_image", message: "the image cannot be decoded (\(error.code)): \(error.description)"))
        } catch {
            return .failure(PostFailure(code: "undecodable_image", message: "the image cannot be prepared for the model: \(error)"))
        }
    }
}
