// The owner's approval in the page: the new password is checked against the device policy as it is typed, sealed
// in this page to the device's key (hpke.js), and only the seal is sent; the password fields have no name, so the
// form never carries them.
import { available, sealPassword } from "./hpke.js";

const form = document.getElementById("approve");
if (form) {
  const first = document.getElementById("new-password");
  const second = document.getElementById("new-password-again");
  const policy = document.getElementById("policy");
  const button = document.getElementById("approve-button");
  const message = name => form.dataset["msg" + name];

  // The device password policy, as the devices enforce it (LatchkeyProtocol's PasswordPolicy.device).
  const problem = () => {
    const password = first.value;
    if (password.length < 8 || password.length > 16) return message("Length");
    const kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter(kind => kind.test(password)).length;
    if (kinds < 2) return message("Kinds");
    const lower = password.toLowerCase();
    if (lower.includes("admin") || lower.includes("nimda")) return message("Username");
    if (second.value && second.value !== password) return message("Differ");
    return null;
  };
  const show = () => {
    const found = first.value ? problem() : null;
    policy.textContent = found || (first.value && second.value === first.value ? message("Ok") : policy.textContent);
    policy.classList.toggle("error", Boolean(found));
  };
  first.addEventListener("input", show);
  second.addEventListener("input", show);

  if (!available()) {
    document.getElementById("insecure").hidden = false;
    button.disabled = true;
  }

  form.addEventListener("submit", async event => {
    event.preventDefault();
    const found = problem() || (second.value !== first.value ? message("Differ") : null);
    if (found) { policy.textContent = found; policy.classList.add("error"); return; }
    button.disabled = true;
    policy.textContent = message("Sealing");
    document.getElementById("sealed").value =
      await sealPassword(form.dataset.agreementKey, form.dataset.request, form.dataset.serial, first.value);
    first.value = "";
    second.value = "";
    form.submit();
  });
}
