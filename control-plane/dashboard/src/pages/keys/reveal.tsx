import type { Revealed } from "../../api.js";
import { Dialog, SecretBox } from "../../ui.js";

export function RevealDialog(props: { revealed: Revealed; title: string; onDone: () => void }) {
  return (
    <Dialog title={props.title} onClose={props.onDone} testId="reveal">
      <SecretBox title="API Key created! Copy it now" secret={props.revealed.key} noun="key" testId="revealed-key" />
      <footer className="dialog-foot">
        <button type="button" className="primary" onClick={props.onDone}>
          Done
        </button>
      </footer>
    </Dialog>
  );
}
