import Testing
import WrapNetEngine

@Test func engineVersionIsSemantic() {
  #expect(WrapNetEngineInfo.version.split(separator: ".").count == 3)
}
