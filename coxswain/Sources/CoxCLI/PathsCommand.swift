import ArgumentParser
import Coxswain
import Foundation

struct PathsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paths",
        abstract: "Cascades: name 2 or 3 nodes (entry[,mid],exit); profiles created with --path enter at the first and leave at the last.",
        subcommands: [Add.self, List.self, Remove.self, Bind.self, Unbind.self, Provision.self, Color.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a path; each hop gets an inner link to the next, and the nodes are pushed.")
        @Argument(help: "Path name (unique).") var name: String
        @Option(help: "Node IDs or names, entry first, comma-separated: entry,exit or entry,mid,exit.") var hops: String
        @Option(help: "A color to tell the path apart, #rrggbb.") var color: String = ""
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let hops = self.hops.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            try await PushReport.commit(options, { try await $0.service.addPath(name: name, hops: hops, color: color, by: .cliUser) }) {
                "added path \($0.name) (\($0.id)); use it with: cox profiles create NAME --user EMAIL --path \($0.name)"
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List paths with their hops and the inner links they use.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let (paths, links, names, bound) = try await options.open().store.read { tx in
                    let bound = try tx.exitBindings().map { ($0.pathID, try tx.device($0.deviceID).name) }
                    return (try tx.paths(), try tx.nodeLinks(), Dictionary(uniqueKeysWithValues: try tx.nodes().map { ($0.id, $0.name) }),
                            Dictionary(grouping: bound, by: \.0).mapValues { $0.map(\.1) })
                }
                print(Table.render(header: ["ID", "NAME", "COLOR", "HOPS", "INNER LINKS", "BOUND DEVICES"], rows: paths.map { path in
                    let hopLinks = path.links(in: links).map { "\(names[$0.entryNodeID] ?? $0.entryNodeID):\($0.innerInterface)" }
                    return [path.id, path.name, path.color.isEmpty ? "-" : path.color, path.hops.map { names[$0] ?? $0 }.joined(separator: " → "), hopLinks.joined(separator: " "),
                            (bound[path.id] ?? []).joined(separator: ",")]
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

    struct Bind: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Switch a device's exit live: its traffic entering at the path's entry leaves by the path's exit (no resync, same tunnel).")
        @Argument(help: "Device ID, or a name only one device has.") var device: String
        @Argument(help: "Path ID or name; its entry must be a node the device has an AmneziaWG profile on.") var path: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await PushReport.commit(options, { try await $0.service.bindExit(device: device, path: path, by: .cliUser) }) {
                "device \($0.device.name) now leaves by path \($0.path?.name ?? "-")" + ($0.previous.map { " (was \($0.name))" } ?? "")
            }
        }
    }

    struct Unbind: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End a device's live exit: its traffic leaves where its profiles say again.")
        @Argument(help: "Device ID, or a name only one device has.") var device: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await PushReport.commit(options, { try await $0.service.unbindExit(device: device, by: .cliUser) }) {
                "device \($0.device.name) no longer leaves by path \($0.previous?.name ?? "-")"
            }
        }
    }

    struct Provision: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Push every hop of a path again (peers, link peers, inner links) at a new revision.")
        @Argument(help: "Path ID or name.") var path: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await PushReport.commit(options, { try await $0.service.provisionPath(path, by: .cliUser) }) { "re-provisioned path \($0.name)" }
        }
    }

    struct Color: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a path's color (#rrggbb; \"\" clears it).")
        @Argument(help: "Path ID or name.") var path: String
        @Argument(help: "#rrggbb, or an empty string.") var color: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let path = try await options.open().service.setPathColor(self.path, color: color, by: .cliUser)
                print("path \(path.name): color \(path.color.isEmpty ? "cleared" : path.color)")
            }
        }
    }
}
