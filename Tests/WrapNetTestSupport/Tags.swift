import Testing

extension Tag {
  /// Tests that read the real datasets (tens of MB; slow in debug builds). Skip with `--skip-tags`... or filter.
  @Tag public static var realData: Self
}
