// Keeps a WebSocket open to the live API; each new question is pushed here.
const list = document.getElementById("questions");
const state = document.getElementById("connection");

function show(question) {
  const item = document.createElement("li");
  item.className = "question";
  const meta = document.createElement("div");
  meta.className = "muted";
  meta.textContent = `${question.project_id} — ${question.submit_datetime} — ${question.source_ip || ""}`;
  const text = document.createElement("pre");
  text.textContent = question.contact_detail.replaceAll("newline", "\n");
  item.append(meta, text);
  list.prepend(item);
}

function connect() {
  const socket = new WebSocket(window.QA_CONFIG.liveUrl);
  socket.onopen = () => { state.textContent = "接続しました。新しい質問はここに表示されます。 / Connected: new questions appear here."; };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "question") show(message.question);
  };
  socket.onclose = () => {
    state.textContent = "切断されました。再接続します… / Disconnected: reconnecting…";
    setTimeout(connect, 1000);
  };
}

connect();
