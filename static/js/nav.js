// The menu of every page: on a narrow screen it folds behind one button, which opens
// and closes it; on a wide one the button is not shown and the menu always is.
// Without this script the button stays hidden and the menu stays open.

const button = document.querySelector(".menu-toggle");
const menu = document.getElementById("site-menu");
const narrow = window.matchMedia("(max-width: 48rem)");

function show(open) {
  button.setAttribute("aria-expanded", String(open));
  menu.dataset.open = String(open);
}

if (button && menu) {
  button.hidden = false;
  show(false);
  button.addEventListener("click", () => show(button.getAttribute("aria-expanded") !== "true"));
  // Escape closes the open menu and gives the focus back to its button.
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && narrow.matches && menu.dataset.open === "true") {
      show(false);
      button.focus();
    }
  });
  narrow.addEventListener("change", () => show(false));
}
