/* The parts of Drupal core's drupal.js and ajax.js that the nodejs module touches. */
window.Drupal = {
  behaviors: {},
  attachBehaviors: function (context, settings) {
    Object.keys(this.behaviors).forEach(function (name) {
      var b = Drupal.behaviors[name];
      if (b && typeof b.attach === 'function') {
        b.attach(context, settings);
      }
    });
  }
};
/* Drupal 8+ Drupal.Ajax: beforeSerialize fills options.data before an AJAX request. */
Drupal.Ajax = function () {};
Drupal.Ajax.prototype.beforeSerialize = function (element, options) {
  options.data = options.data || {};
  options.data['ajax_page_state[theme]'] = 'test';
};
/* The module's nodejs.js patches Drupal.ajax.prototype (Drupal 7's name). */
Drupal.ajax = Drupal.Ajax;
