// Ask before a form that cannot be undone is sent: <form data-confirm="Question?">.
// The server decides regardless; this only guards against a slip of the finger.

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}
