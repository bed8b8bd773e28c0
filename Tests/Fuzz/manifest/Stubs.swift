// Stand-in for the one type the manifest files need from the rest of the Model module:
// `ModelLoadError.weights` carries a `SafeTensorsError`, which lives in SafeTensors.swift next to
// the tensor code. The manifest parser never creates one, so an empty enum keeps the build small.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    public var description: String { "" }
}
