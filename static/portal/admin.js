// Staff admin behaviour that needs script, kept out of the page (a Content-Security-Policy is coming).
// Drop-down list filters (templates/admin/dropdown_filter.html): choosing an option opens its list.
"use strict";
document.addEventListener("change", (event) => {
  const select = event.target;
  if (select instanceof HTMLSelectElement && select.classList.contains("dropdown-filter")) {
    window.location.href = select.value;
  }
});
