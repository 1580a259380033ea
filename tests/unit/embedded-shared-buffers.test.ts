import { describe, expect, it } from "vitest";
import { embeddedSharedBuffersMb } from "../../db/embedded";

const GiB = 1024 ** 3;

describe("the embedded server's shared_buffers", () => {
  it("is a quarter of the machine's memory, at most 4 GB", () => {
    expect(embeddedSharedBuffersMb(2 * GiB, 0)).toBe(512);
    expect(embeddedSharedBuffersMb(8 * GiB, 0)).toBe(2048);
    expect(embeddedSharedBuffersMb(24 * GiB, 0)).toBe(4096);
  });

  it("follows a container's memory limit rather than the host's", () => {
    expect(embeddedSharedBuffersMb(64 * GiB, 1 * GiB)).toBe(256);
    // cgroup v2 without a limit reports a huge number: the machine's memory counts.
    expect(embeddedSharedBuffersMb(2 * GiB, 2 ** 62)).toBe(512);
  });

  it("never goes below 128 MB", () => {
    expect(embeddedSharedBuffersMb(256 * 1024 ** 2, 0)).toBe(128);
  });
});
