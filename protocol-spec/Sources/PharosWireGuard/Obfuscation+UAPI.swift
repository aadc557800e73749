import PharosSpec

extension Obfuscation {
    /// AmneziaWG's UAPI device keys for this set, in its order (i1–i5 only when set).
    public var uapiLines: [String] {
        ["jc=\(jc)", "jmin=\(jmin)", "jmax=\(jmax)", "s1=\(s1)", "s2=\(s2)", "s3=\(s3)", "s4=\(s4)",
         "h1=\(h1)", "h2=\(h2)", "h3=\(h3)", "h4=\(h4)"]
            + [("i1", i1), ("i2", i2), ("i3", i3), ("i4", i4), ("i5", i5)].filter { !$0.1.isEmpty }.map { "\($0.0)=\($0.1)" }
    }
}

extension Obfuscation {
    /// The first of `i1` … `i5` whose value could break out of its UAPI line (a newline or any
    /// other control character would start a new `key=value` of the sender's choosing), or nil.
    public var unsafeTemplateKey: String? {
        for (key, value) in [("i1", i1), ("i2", i2), ("i3", i3), ("i4", i4), ("i5", i5)]
        where value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            return key
        }
        return nil
    }
}
