import { describe, expect, it } from "vitest";
import { decodeTraceRequest, encodeTraceResponse, UndecodableBodyError } from "~/features/otlp/codec.server";

describe("the OTLP protobuf codec", () => {
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
