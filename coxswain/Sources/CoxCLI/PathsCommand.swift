import ArgumentParser
import Coxswain
import Foundation

struct PathsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paths",
        abstract: "Cascades: name 2 or 3 nodes (entry[,mid],exit); profiles created with --path enter at the first and leave at the last.",
        subcommands: [Add.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a path; each hop gets an inner link to the next, and the nodes are pushed.")
        @Argument(help: "Path name (unique).") var name: String
        @Option(help: "Node IDs or names, entry first, comma-separated: entry,exit or entry,mid,exit.") var hops: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let hops = self.hops.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            try await PushReport.commit(options, { try await $0.service.addPath(name: name, hops: hops, by: .cliUser) }) {
                "added path \($0.name) (\($0.id)); use it with: cox profiles create NAME --user EMAIL --path \($0.name)"
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List paths with their hops and the inner links they use.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let (paths, links, names) = try await options.open().store.read { tx in
                    (try tx.paths(), try tx.nodeLinks(), Dictionary(uniqueKeysWithValues: try tx.nodes().map { ($0.id, $0.name) }))
                }
                print(Table.render(header: ["ID", "NAME", "HOPS", "INNER LINKS"], rows: paths.map { path in
                    let hopLinks = zip(path.hops, path.hops.dropFirst()).compactMap { pair in
                        links.first { $0.entryNodeID == pair.0 && $0.exitNodeID == pair.1 }
                            .map { "\(names[pair.0] ?? pair.0):\($0.innerInterface)" }
                    }
                    return [path.id, path.name, path.hops.map { names[$0] ?? $0 }.joined(separator: " → "), hopLinks.joined(separator: " ")]
                }))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Remove a path no profile uses; inner links no other path uses are removed from their nodes.")
        @Argument(help: "Path ID or name.") var path: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await PushReport.commit(options, { try await $0.service.removePath(path, by: .cliUser) }) { "removed path \($0.name)" }
        }
    }
}
