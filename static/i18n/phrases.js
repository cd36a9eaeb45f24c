// "I need an interpreter for this language", written in the language itself, for the
// "Welche Sprache?" view that the counsellor turns towards the client. Keyed by language
// tag (a regional variant falls back to its base language). Where a language is missing,
// the view shows the language's own name alone.
export default {
  ar: "أحتاج إلى مترجم لهذه اللغة",
  bg: "Нуждая се от преводач за този език",
  ckb: "پێویستم بە وەرگێڕ هەیە بۆ ئەم زمانە",
  de: "Ich brauche eine Dolmetscherin oder einen Dolmetscher für diese Sprache",
  en: "I need an interpreter for this language",
  fa: "برای این زبان به مترجم نیاز دارم",
  "fa-AF": "برای این زبان به ترجمان ضرورت دارم",
  fr: "J’ai besoin d’un interprète pour cette langue",
  kmr: "Ji bo vê zimanî pêdiviya min bi wergêr heye",
  pl: "Potrzebuję tłumacza tego języka",
  ps: "د دې ژبې لپاره ژباړونکي ته اړتیا لرم",
  ro: "Am nevoie de un interpret pentru această limbă",
  ru: "Мне нужен переводчик с этого языка",
  ti: "ንዚ ቋንቋ እዚ ተርጓሚ የድልየኒ",
  tr: "Bu dil için tercümana ihtiyacım var",
  uk: "Мені потрібен перекладач з цієї мови",
};
