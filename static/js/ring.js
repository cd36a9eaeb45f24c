// The ring of an incoming offer: a tone made with Web Audio (no audio file), and a desktop
// notification when the page is in the background.

let context = null;

/** Browsers start audio only after a user gesture: call this from a click. */
export function unlockAudio() {
  context ??= new AudioContext();
  if (context.state === "suspended") context.resume();
}

/** Whether the browser lets the page ring now; `onChange(allowed)` hears when that changes. */
export function watchSound(onChange) {
  context ??= new AudioContext();
  context.addEventListener("statechange", () => onChange(context.state === "running"));
  onChange(context.state === "running");
}

/** Ring until the returned function is called: two tones, on 1 s, off 2 s. */
export function ring() {
  unlockAudio();
  const gain = context.createGain();
  gain.gain.value = 0;
  gain.connect(context.destination);
  const tones = [440, 480].map((frequency) => {
    const osc = context.createOscillator();
    osc.frequency.value = frequency;
    osc.connect(gain);
    osc.start();
    return osc;
  });
  const start = context.currentTime;
  // Schedule 60 s of the pattern at once; stop() cuts it short.
  for (let i = 0; i < 20; i++) {
    const at = start + i * 3;
    gain.gain.setValueAtTime(0.15, at);
    gain.gain.setValueAtTime(0, at + 1);
  }
  return () => {
    gain.gain.cancelScheduledValues(context.currentTime);
    gain.gain.value = 0;
    for (const osc of tones) osc.stop();
    gain.disconnect();
  };
}

/** Ask for permission to show notifications (from a click). */
export function askNotificationPermission() {
  if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
}

/** A desktop notification, only when the page is hidden; returns a closer. */
export function notifyIfHidden(title, body, tag) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return () => {};
  const note = new Notification(title, { body, tag, requireInteraction: true });
  note.onclick = () => {
    window.focus();
    note.close();
  };
  return () => note.close();
}
