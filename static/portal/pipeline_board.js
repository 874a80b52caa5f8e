// The pipeline board (revenue.admin_board): drag a card to another stage's column; the server
// changes the stage through the opportunity service and answers with the new stage, or refuses
// with a message (403 for a role that reads the pipeline, 409 for a closed deal), and the card
// goes back. A static file, no inline script: a Content-Security-Policy is coming.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const board = document.getElementById("pipeline-board");
  if (!board) {
    return;
  }
  const message = document.getElementById("board-message");
  const csrfInput = document.querySelector("input[name=csrfmiddlewaretoken]");
  let dragged = null;

  const say = (text) => {
    message.textContent = text;
    message.hidden = !text;
  };

  const recount = () => {
    board.querySelectorAll(".board-column").forEach((column) => {
      column.querySelector(".board-count").textContent = column.querySelectorAll(".board-card").length;
    });
  };

  board.addEventListener("dragstart", (event) => {
    dragged = event.target.closest(".board-card[draggable=true]");
    if (!dragged) {
      return;
    }
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.id);
    dragged.classList.add("moving");
  });

  board.addEventListener("dragend", () => {
    if (dragged) {
      dragged.classList.remove("moving");
    }
    board.querySelectorAll(".drop-target").forEach((column) => column.classList.remove("drop-target"));
  });

  board.addEventListener("dragover", (event) => {
    const column = event.target.closest(".board-column");
    if (dragged && column) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      column.classList.add("drop-target");
    }
  });

  board.addEventListener("dragleave", (event) => {
    const column = event.target.closest(".board-column");
    if (column && !column.contains(event.relatedTarget)) {
      column.classList.remove("drop-target");
    }
  });

  board.addEventListener("drop", async (event) => {
    const column = event.target.closest(".board-column");
    const card = dragged;
    dragged = null;
    if (!card || !column) {
      return;
    }
    event.preventDefault();
    column.classList.remove("drop-target");
    const origin = card.parentElement;
    if (origin === column.querySelector(".board-cards")) {
      return;
    }
    column.querySelector(".board-cards").append(card);
    recount();
    say("");
    const body = new URLSearchParams({ stage: column.dataset.stage });
    let response;
    try {
      response = await fetch(card.dataset.moveUrl, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfInput ? csrfInput.value : "", "X-Requested-With": "XMLHttpRequest" },
      });
    } catch (error) {
      response = null;
    }
    let answer = {};
    if (response) {
      try {
        answer = await response.json();
      } catch (error) {
        answer = {};
      }
    }
    if (response && response.ok) {
      card.dataset.stage = answer.stage;
      board.dataset.lastMoved = card.dataset.id;
      return;
    }
    origin.append(card);
    recount();
    say(answer.error || board.dataset.failed || "The card could not be moved.");
  });
});
