import ArgumentParser

/// The `postclassd` command line: the daemon and its tools.
struct PostclassdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postclassd",
        abstract: "Streaming multimodal classifier for Kafka: labels posts for image-text correlation and sarcasm.",
        subcommands: [RunCommand.self, CheckCommand.self, BrokerCommand.self, ClassifyCommand.self, EncodeTextCommand.self, EncodeImageCommand.self],
        defaultSubcommand: RunCommand.self
    )
}
