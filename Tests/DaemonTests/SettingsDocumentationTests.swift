import Foundation
import TestSupport
import Testing

/// The settings as the binary's `--help` lists them are the ones the README's table, the
/// service's environment file and the man page document: none missing, none extra.
@Suite struct SettingsDocumentationTests {
    /// The long flags a command's `--help` lists, without `--help`.
    private func flags(_ command: String) throws -> Set<String> {
        let help = try runProgram(try Binaries.postclassd.path, ["help", command])
        #expect(help.status == 0, "\(help.output)")
        let names = help.output.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  --") else { return nil }
            return String(line.dropFirst(4).prefix { $0.isLetter || $0.isNumber || $0 == "-" })
        }
        return Set(names).subtracting(["help"])
    }

    /// Setting names in the first column of the README's settings table.
    private func readmeSettings() throws -> Set<String> {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "### Settings\n").dropFirst().first?.components(separatedBy: "\n### ").first)
        var names: Set<String> = []
        for row in section.split(separator: "\n") where row.hasPrefix("| `") {
            let firstCell = row.dropFirst(2).prefix { $0 != "|" }
            for part in firstCell.split(separator: "`", omittingEmptySubsequences: false).enumerated() where part.offset % 2 == 1 { names.insert(String(part.element)) }
        }
        return names
    }

    @Test("run's flags are the README's settings table, and each is in the environment file with its variable")
    func runFlagsAreDocumented() throws {
        let run = try flags("run").subtracting(["config"])
        #expect(run.count >= 20, "too few flags parsed: \(run.sorted())")
        let readme = try readmeSettings()
        #expect(run == readme, "in --help only: \(run.subtracting(readme).sorted()); in the README only: \(readme.subtracting(run).sorted())")
        let envFile = try String(contentsOf: repositoryRoot.appendingPathComponent("systemd/postclassd.env.example"), encoding: .utf8)
        for name in run.union(["config"]) {
            let variable = "POSTCLASSD_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
            #expect(envFile.contains("\n#\(variable)="), "\(variable) is not in systemd/postclassd.env.example")
        }
    }

    @Test("check takes every flag run takes, and the README documents its own")
    func checkTakesRunsSettings() throws {
        let run = try flags("run")
        let check = try flags("check")
        #expect(run.isSubset(of: check), "run flags check lacks: \(run.subtracting(check).sorted())")
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        for own in check.subtracting(run) {
            #expect(readme.contains("--\(own)"), "the README does not mention check --\(own)")
        }
        #expect(check.subtracting(run) == ["write-test", "timeout", "env-file", "credentials-directory"])
    }

    @Test("the man page the package ships carries every command's --help")
    func manPageMatchesHelp() throws {
        let page = try runProgram("/bin/bash", [repositoryRoot.appendingPathComponent("scripts/lib/manpage.sh").path,
                                                try Binaries.postclassd.path, "1.2.3"], includeStandardError: false)
        #expect(page.status == 0)
        #expect(page.output.hasPrefix(".TH POSTCLASSD 8 "), "\(page.output.prefix(200))")
        for command in ["run", "check", "broker", "classify", "encode-text", "encode-image"] {
            #expect(page.output.contains("\n.SS postclassd \(command)\n"), "no section for \(command)")
        }
        for flag in try flags("check") {
            #expect(page.output.contains("--\(flag)"), "the man page lacks --\(flag)")
        }
        // roff would swallow a line starting with a dot: none may reach it unescaped inside the help.
        let body = page.output.components(separatedBy: "\n.nf\n").dropFirst().map { $0.components(separatedBy: "\n.fi\n")[0] }
        #expect(!body.isEmpty)
        for block in body {
            for line in block.split(separator: "\n") { #expect(!line.hasPrefix(".") && !line.hasPrefix("'"), "unescaped: \(line)") }
        }
    }
}
