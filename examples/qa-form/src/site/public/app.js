// Sends the question as URL parameters; line breaks travel as the word "newline",
// which the consumers turn back into line breaks.
const form = document.getElementById("question-form");
const status = document.getElementById("status");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const params = new URLSearchParams({
    project_id: document.getElementById("project_id").value,
    contact_detail: document.getElementById("contact_detail").value.replace(/\r?\n/g, "newline"),
  });
  status.textContent = "送信中… / Sending…";
  try {
    const response = await fetch(`${window.QA_CONFIG.questionUrl}?${params}`, { method: "POST" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    status.textContent = "質問を送信しました。ありがとうございます。 / Question sent. Thank you.";
    document.getElementById("contact_detail").value = "";
  } catch (error) {
    status.textContent = `送信できませんでした / Could not send: ${error.message}`;
  }
});
