// The guest's page, opened from an invitation link (/join/<token>); no account needed.
import { $ } from "./dom.js";
import { locale, setLocale, translate } from "./i18n.js";

translate();
const select = $("#locale");
select.value = locale();
select.addEventListener("change", () => setLocale(select.value));
