export function ComingSoon({ title }: { title: string }) {
  return (
    <div className="rounded-lg border border-dashed border-slate-300 bg-white p-10 text-center text-slate-500">
      <h1 className="text-lg font-semibold capitalize text-slate-700">{title.replace("-", " ")}</h1>
      <p className="mt-2 text-sm">This page is being built.</p>
    </div>
  );
}
