import Foundation

/// Loads the image encoder a folder's config.json names by its `kind`.
public func loadImageEncoder(directory: URL) throws(ModelLoadError) -> any ImageEncoder {
    throw .inconsistent(detail: "image encoders are not built yet (\(directory.path))")
}
