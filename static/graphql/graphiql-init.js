// Starts GraphiQL on #graphiql. The CSRF token comes from the page (data-csrf): the GraphQL view
// enforces CSRF for cookie sessions like every other POST.
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var csrf = root.getAttribute("data-csrf");
  var url = root.getAttribute("data-url");
  function fetcher(params) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": csrf,
      },
      body: JSON.stringify(params),
    }).then(function (response) {
      return response.json();
    });
  }
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolbar: true,
      shouldPersistHeaders: false,
      // No query history in localStorage: queries name patients.
      storage: {
        getItem: function () { return null; },
        setItem: function () {},
        removeItem: function () {},
        clear: function () {},
        length: 0,
      },
    }),
  );
})();
