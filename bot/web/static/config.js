// 配置: a problem's line number takes the cursor to that line of the file and selects it.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a.goto");
  if (!link) return;
  event.preventDefault();
  const area = document.querySelector("textarea[name=text]");
  const lines = area.value.split("\n");
  const n = Math.max(1, Math.min(lines.length, parseInt(link.dataset.line, 10)));
  const start = lines.slice(0, n - 1).reduce((sum, line) => sum + line.length + 1, 0);
  area.focus();
  area.setSelectionRange(start, start + lines[n - 1].length);
  const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 16;
  area.scrollTop = Math.max(0, (n - 3) * lineHeight);
});
