// Copy a secret shown once to the clipboard: <button data-copy="id-of-element" hidden>.
// Without this script the button stays hidden and the secret can be selected by hand.

const status = document.getElementById("copy-status");

function report(text) {
  if (status) status.textContent = text;
}

function select(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  if (!source) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.textContent.trim());
      report("Copied. It will not be shown again.");
    } catch {
      select(source);
      report("Selected: press Ctrl+C (or ⌘C) to copy.");
    }
  });
}
