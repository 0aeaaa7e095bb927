import Testing
import WrapNet

@Suite struct ScheduleTests {
  private func rates(_ s: LearningRateSchedule, total: Int) -> [Float] {
    (0..<total).map { s.rate(atStep: $0, totalSteps: total) }
  }

  private func expectClose(_ a: [Float], _ b: [Float], _ what: String = "") {
    #expect(a.count == b.count)
    for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-6 * max(1, abs(y)), "\(what): got \(a), expected \(b)") }
  }

  @Test func constantWithWarmup() {
    // Warm-up W = 4: (s + 1) / 4 * 0.1 for s < 4, then 0.1.
    expectClose(rates(.constant(0.1, warmupSteps: 4), total: 6), [0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    expectClose(rates(.constant(0.1), total: 3), [0.1, 0.1, 0.1])
  }

  @Test func cosineDecaysToZero() {
    // T = 4, no warm-up: p = s/4 -> 0.5 * (1 + cos(pi * p)) = [1, 0.853553, 0.5, 0.146447], and 0 at s = T.
    let s = LearningRateSchedule.cosine(2)
    expectClose(rates(s, total: 4), [2, 1.7071068, 1, 0.29289322])
    #expect(s.rate(atStep: 4, totalSteps: 4) == 0)
    #expect(s.rate(atStep: 100, totalSteps: 4) == 0)
  }

  @Test func cosineWithWarmup() {
    // W = 2, T = 6: warm-up [0.5, 1] * r; then p = (s - 2) / 4 for s = 2...5 -> [1, 0.853553, 0.5, 0.146447] * r.
    expectClose(
      rates(.cosine(1, warmupSteps: 2), total: 6), [0.5, 1, 1, 0.85355339, 0.5, 0.14644661])
  }

  @Test func stepDecayAtMilestones() {
    // gamma 0.1 at steps 2 and 4.
    expectClose(
      rates(.step(1, milestones: [2, 4], gamma: 0.1), total: 6), [1, 1, 0.1, 0.1, 0.01, 0.01])
    // Epoch milestones [1, 2] with 3 steps per epoch = step milestones [3, 6]; warm-up 2 steps.
    expectClose(
      rates(.step(0.4, milestoneEpochs: [1, 2], stepsPerEpoch: 3, gamma: 0.5, warmupSteps: 2), total: 8),
      [0.2, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1, 0.1])
  }

  @Test func runNoLongerThanWarmupDoesNotDivideByZero() {
    let s = LearningRateSchedule.cosine(1, warmupSteps: 5)
    expectClose(rates(s, total: 3), [0.2, 0.4, 0.6])
  }
}
