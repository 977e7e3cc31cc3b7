// Width probe for the VRNN Handwriting Lab (Streamlit custom components v2, no build step).
//
// Python cannot see how wide the page is, and the linked views lay out their panels (one
// column or two) and wrap their captions for a width. This invisible component measures
// the main column it sits in and sends it as the state value "width" on mount and when a
// resize changes it by more than 8% (debounced), so a narrow window or a projector gets a
// layout it can read. Streamlit calls this function again on every rerun: the observer
// lives on the root element.
export default function (component) {
  const { parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".vp-root");
  if (!root) return;
  // the component lives in a shadow root: measure (and watch) the element that hosts it
  const host = parentElement.host || parentElement;
  let probe = root.__vpProbe;
  if (!probe) {
    probe = { sent: 0, timer: null, send: null };
    root.__vpProbe = probe;
    const measure = () => {
      const w = Math.round(host.getBoundingClientRect().width);
      if (w > 0 && Math.abs(w - probe.sent) > 0.08 * Math.max(probe.sent, 1)) {
        probe.sent = w;
        if (probe.send) probe.send("width", w);
      }
    };
    probe.measure = measure;
    new ResizeObserver(() => {
      clearTimeout(probe.timer);
      probe.timer = setTimeout(measure, 250);
    }).observe(host);
  }
  probe.send = setStateValue;
  probe.measure();
}
