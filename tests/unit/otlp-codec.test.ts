import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { decodeTraceRequest, encodeTraceResponse, UndecodableBodyError } from "~/features/otlp/codec.server";
import { DESCRIPTOR_FILE, descriptorText } from "../../scripts/generate-otlp-descriptor";

describe("the OTLP protobuf codec", () => {
  it("loads the descriptor the vendored .proto files make (run scripts/generate-otlp-descriptor.ts after changing them)", () => {
    expect(fs.readFileSync(DESCRIPTOR_FILE, "utf8")).toBe(descriptorText());
  });

  it("refuses bytes that are not an ExportTraceServiceRequest", () => {
    expect(() => decodeTraceRequest(Buffer.from("not protobuf"), "protobuf")).toThrow(UndecodableBodyError);
  });

  it("answers an empty response when nothing was rejected, partial_success otherwise", () => {
    expect(encodeTraceResponse("json", null)).toBe("{}");
    expect(JSON.parse(encodeTraceResponse("json", { rejectedSpans: 2, errorMessage: "why" }) as string)).toEqual({
      partialSuccess: { rejectedSpans: "2", errorMessage: "why" },
    });
  });
});
