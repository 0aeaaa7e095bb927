import Foundation
import Testing
import WrapNet
import WrapNetTestSupport

@Suite struct MD5Tests {
  /// The test suite of RFC 1321, appendix A.5.
  @Test(arguments: [
    ("", "d41d8cd98f00b204e9800998ecf8427e"),
    ("a", "0cc175b9c0f1b6a831c399e269772661"),
    ("abc", "900150983cd24fb0d6963f7d28e17f72"),
    ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
    ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
    (
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "d174ab98d277d9f5a5611c2c9f419d9f"
    ),
    (
      "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
      "57edf4a22be3c955ac49da2e2107b67a"
    ),
  ])
  func rfc1321Vectors(input: String, expected: String) {
    #expect(MD5.digest(Array(input.utf8)).hexString == expected)
  }

  /// One million 'a' (the classic large vector): exercises many blocks and the 64-bit length.
  @Test func oneMillionA() {
    let input = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
    #expect(MD5.digest(input).hexString == "7707d6ae4e027c70eea2a935c2296f21")
  }

  /// Padding edge cases: lengths around one block (55, 56, 63, 64, 65 bytes) against `md5sum`'s known values.
  @Test(arguments: [
    (55, "ef1772b6dff9a122358552954ad0df65"),
    (56, "3b0c8ac703f828b04c6c197006d17218"),
    (63, "b06521f39153d618550606be297466d5"),
    (64, "014842d480b571495a4a0363793f7367"),
    (65, "c743a45e0d2e6a95cb859adae0248435"),
  ])
  func blockBoundaries(length: Int, expected: String) {
    #expect(MD5.digest([UInt8](repeating: UInt8(ascii: "a"), count: length)).hexString == expected)
  }

  /// Any split into `update` calls gives the one-shot digest.
  @Test func incrementalEqualsOneShot() {
    let data = testBytes(count: 1000)
    let whole = MD5.digest(data)
    for split in [0, 1, 55, 63, 64, 65, 128, 500, 999, 1000] {
      var md5 = MD5()
      md5.update(Array(data[0..<split]))
      md5.update(Array(data[split...]))
      #expect(md5.finalize() == whole, "split at \(split)")
    }
    var bytewise = MD5()
    for b in data { bytewise.update([b]) }
    #expect(bytewise.finalize() == whole)
  }
}
