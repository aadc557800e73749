import Foundation
import GRPCCore
import PharosProto
import PharosSpec
import SwiftProtobuf
import Testing

/// Pins the names and field tags upstream Go peers depend on. A failure here means
/// a wire break: add fields, never renumber (protocol-spec/README.md).
@Suite struct WireContractTests {
    @Test func servicesAndMethodsKeepUpstreamNames() {
        #expect(Pharos_Node_V1_NodeControl.descriptor.fullyQualifiedService == "pharos.node.v1.NodeControl")
        #expect(Pharos_Account_V1_AccountSync.descriptor.fullyQualifiedService == "pharos.account.v1.AccountSync")
        #expect(Pharos_Monitor_V1_MonitorStream.descriptor.fullyQualifiedService == "pharos.monitor.v1.MonitorStream")
        let nodeMethods = Pharos_Node_V1_NodeControl.Method.descriptors.map(\.method)
        #expect(nodeMethods.sorted() == [
            "AddPeer", "ConfigureInnerLink", "GetMetrics", "GetStatus", "ListPeers", "PushConfig", "RemoveInnerLink",
            "RemovePeer", "RestartService", "SetNetworkConfig", "WatchEvents",
        ])
        #expect(Pharos_Account_V1_AccountSync.Method.descriptors.map(\.method).sorted() ==
                ["Authenticate", "ClaimEnrollment", "EnrollKeys", "GetProfile"])
        #expect(Pharos_Account_V1_AccountSync.Method.ClaimEnrollment.descriptor.fullyQualifiedMethod ==
                "pharos.account.v1.AccountSync/ClaimEnrollment")
    }

    /// Our own relay-control service: the path relays refuse to clients (`relayControlPrefix`)
    /// and the ones they call themselves (`deniedDevicesPath`, `renewRelayCertificatePath`)
    /// are the generated ones.
    @Test func relayControlIsWhereTheRelayLooksForIt() throws {
        #expect("/" + Pharos_Relay_V1_RelayControl.Method.DeniedDevices.descriptor.fullyQualifiedMethod ==
                PharosIdentity.deniedDevicesPath)
        #expect("/" + Pharos_Relay_V1_RelayControl.Method.RenewRelayCertificate.descriptor.fullyQualifiedMethod ==
                PharosIdentity.renewRelayCertificatePath)
        #expect(PharosIdentity.renewRelayCertificatePath.hasPrefix(PharosIdentity.relayControlPrefix))
        var response = Pharos_Relay_V1_DeniedDevicesResponse()
        response.fingerprints = ["sha256:ab"]
        #expect(try response.serializedBytes() as [UInt8] == [1 << 3 | 2, 9] + Array("sha256:ab".utf8))
    }

    @Test func enumValuesKeepTheirNumbers() {
        #expect(Pharos_Node_V1_Protocol.amneziawg.rawValue == 1)
        #expect(Pharos_Node_V1_Protocol.xrayReality.rawValue == 2)
        #expect(Pharos_Node_V1_EventType.error.rawValue == 5)
        #expect(Pharos_Node_V1_EventType.peerDisconnected.rawValue == 4)
    }

    /// Each field set alone must serialize with its upstream tag (key = tag << 3 | wire type).
    @Test func eventFieldTags() throws {
        var event = Pharos_Node_V1_Event()
        event.sourceEndpoint = "a"
        #expect(try event.serializedBytes() as [UInt8] == [6 << 3 | 2, 1, UInt8(ascii: "a")])
        event = .init()
        event.txBytes = 1
        #expect(try event.serializedBytes() as [UInt8] == [8 << 3 | 0, 1])
    }

    @Test func statusAndPeerFieldTags() throws {
        var status = Pharos_Node_V1_GetStatusResponse()
        status.appliedRevision = 3
        #expect(try status.serializedBytes() as [UInt8] == [6 << 3 | 0, 3])
        var service = Pharos_Node_V1_ServiceStatus()
        service.handshakingPeers = 2
        #expect(try service.serializedBytes() as [UInt8] == [7 << 3 | 0, 2])
        var peer = Pharos_Node_V1_Peer()
        peer.flow = "x"
        #expect(try peer.serializedBytes() as [UInt8] == [7 << 3 | 2, 1, UInt8(ascii: "x")])
        var obfuscation = Pharos_Node_V1_AmneziaWGObfuscation()
        obfuscation.i5 = "t"
        #expect(try obfuscation.serializedBytes() as [UInt8] == [16 << 3 | 2, 1, 1, UInt8(ascii: "t")])
    }

    @Test func accountFieldTags() throws {
        var claim = Pharos_Account_V1_ClaimEnrollmentRequest()
        claim.encryptionPubkey = Data([9])
        #expect(try claim.serializedBytes() as [UInt8] == [5 << 3 | 2, 1, 9])
        var profile = Pharos_Account_V1_GetProfileResponse()
        profile.wrappedPrivateKey = Data([7])
        #expect(try profile.serializedBytes() as [UInt8] == [4 << 3 | 2, 1, 7])
        var answer = Pharos_Account_V1_ClaimEnrollmentResponse()
        answer.signingPublicKey = Data([1])
        #expect(try answer.serializedBytes() as [UInt8] == [6 << 3 | 2, 1, 1])
        // Our addition: a tag upstream does not use, which its clients skip as unknown.
        var endorsed = Pharos_Account_V1_ClaimEnrollmentResponse()
        endorsed.signingKeyEndorsement = Data([2])
        #expect(try endorsed.serializedBytes() as [UInt8] == [7 << 3 | 2, 1, 2])
    }

    @Test func unknownFieldsFromANewerPeerSurviveAndAreIgnored() throws {
        // tag 99, varint 1: a field this version does not know.
        let bytes: [UInt8] = [1 << 3 | 0, 1, 0x98, 0x06, 1]
        let request = try Pharos_Node_V1_ListPeersRequest(serializedBytes: bytes)
        #expect(request.protocol == .amneziawg)
        #expect(try request.serializedBytes() as [UInt8] == bytes)
    }

    @Test func unknownEnumValuesDoNotFailDecoding() throws {
        let request = try Pharos_Node_V1_ListPeersRequest(serializedBytes: [1 << 3 | 0, 42] as [UInt8])
        #expect(request.protocol == .UNRECOGNIZED(42))
    }
}
