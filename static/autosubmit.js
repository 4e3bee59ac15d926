// Submits the form_post response form at once; without JavaScript the
// page shows a Continue button instead.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-autosubmit]");
  if (form) { form.submit(); }
});
