// What the call view and the room view share: the <section> they draw in, the page's socket,
// this side's role, and this side's camera and microphone with the buttons that turn them off.
import { onLocaleChange } from "./i18n.js";

export class MediaView extends EventTarget {
  /** container: an empty <section>; socket: the page's Socket; role: this side's role.
   * A subclass draws in build() and render(); render() runs again when the locale changes. */
  constructor(container, socket, role) {
    super();
    this.container = container;
    this.socket = socket;
    this.role = role;
    this.stream = null; // camera and microphone, from start() to finish()
    onLocaleChange(() => this.render());
  }

  /** Turn the microphone ("audio") or the camera ("video") off, or on again. */
  toggle(kind) {
    if (kind === "audio") this.muted = !this.muted;
    else this.cameraOff = !this.cameraOff;
    const enabled = kind === "audio" ? !this.muted : !this.cameraOff;
    for (const track of this.stream?.getTracks() ?? []) if (track.kind === kind) track.enabled = enabled;
    this.render();
  }

  /** Stop the camera and microphone. */
  stopStream() {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
  }
}
